#pragma once
/// Exceptions thrown by the core. Invalid arguments use std::invalid_argument
/// (ValueError in Python); these are the cases that need their own type.

#include <stdexcept>
#include <string>

namespace nearid {

/// A long computation stopped because the user asked (Ctrl-C).
class Interrupted : public std::runtime_error {
 public:
  Interrupted() : std::runtime_error("interrupted") {}
};

}  // namespace nearid
