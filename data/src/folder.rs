//! Finding image files: [`skipblock_pixels::folder`], re-exported whole.

pub use skipblock_pixels::folder::*;
