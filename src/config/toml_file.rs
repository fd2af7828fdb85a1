//! Loading a TOML config file into the model, with file:line:key errors.
