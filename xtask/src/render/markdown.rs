use std::io;
use super::Report;
pub fn render(_r: &Report, out: &mut dyn io::Write) -> io::Result<()> { writeln!(out, "todo") }
