//! What differs between the cores the firmware runs on: the entry point
//! attribute (in each program), the stack pointer, and leaving QEMU. The
//! console is semihosting's `println!` everywhere.

/// Ends the program under QEMU with exit status 0 (`success`) or 1.
pub fn exit(success: bool) -> ! {
    semihosting::process::exit(if success { 0 } else { 1 })
}

/// The current stack pointer.
#[inline(always)]
pub fn stack_pointer() -> usize {
    #[cfg(target_arch = "arm")]
    {
        cortex_m::register::msp::read() as usize
    }
    #[cfg(target_arch = "riscv32")]
    {
        let sp: usize;
        // SAFETY: reads a register; no memory is touched.
        unsafe { core::arch::asm!("mv {}, sp", out(reg) sp) };
        sp
    }
}
