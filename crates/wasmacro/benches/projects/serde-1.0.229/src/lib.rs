//! Nothing: this project only builds the dependencies.
