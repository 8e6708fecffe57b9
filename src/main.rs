//! The `switchyard` binary: the library's [`Switchyard`] as it comes, with
//! the built-in hook types. It only chooses the allocator, which a library
//! must leave to the binary.

mod allocator;

use std::process::ExitCode;
use switchyard::Switchyard;

fn main() -> ExitCode {
    Switchyard::from_args().run()
}
