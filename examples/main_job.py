"""nearid's main job (the README's first command runs this file).

The code lives in nearid.app.demo so that `nearid demo` runs the same thing.

    python examples/main_job.py
"""

from nearid.app.demo import main

if __name__ == "__main__":
    main()
