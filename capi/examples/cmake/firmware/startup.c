/* Cortex-M start-up for the QEMU boards: the vector table, data and bss
   set-up, the FPU on an M4F, newlib's semihosting console, and the exit
   code to QEMU. */
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

#include "platform.h"

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_top;
extern int main(void);
extern void initialise_monitor_handles(void);
/* newlib (libgloss): the heap's end, moved by `incr` bytes. */
extern void *_sbrk(ptrdiff_t incr);

void Reset_Handler(void);
static void fault(void);

__attribute__((section(".vectors"), used)) static void *const vectors[16] = {
    &__stack_top, (void *)Reset_Handler, (void *)fault, (void *)fault,
    (void *)fault, (void *)fault, (void *)fault, 0, 0, 0, 0,
    (void *)fault, (void *)fault, 0, (void *)fault, (void *)fault,
};

void Reset_Handler(void) {
  const uint32_t *src = &__data_load;
  for (uint32_t *dst = &__data_start; dst < &__data_end;) *dst++ = *src++;
  for (uint32_t *dst = &__bss_start; dst < &__bss_end;) *dst++ = 0;
#if defined(__ARM_FP)
  /* CPACR: full access to CP10 and CP11 (the FPU). */
  *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
  __asm volatile("dsb\n isb");
#endif
  initialise_monitor_handles();
  tg_platform_exit(main() == 0);
}

/* Semihosting SYS_EXIT: ADP_Stopped_ApplicationExit makes QEMU exit with
   status 0, any other reason with 1. */
void tg_platform_exit(int success) {
  fflush(stdout);
  register uint32_t op __asm("r0") = 0x18;
  register uint32_t reason __asm("r1") = success ? 0x20026u : 0x20023u;
  __asm volatile("bkpt 0xab" : : "r"(op), "r"(reason) : "memory");
  for (;;) {
  }
}

static void fault(void) {
  fputs("c firmware: hard fault\n", stdout);
  tg_platform_exit(0);
}

#define PAINT 0xC0DECAFEu
static uint32_t *painted;

void tg_platform_paint_stack(void) {
  uint32_t *sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  /* Above the heap as it is now (newlib's FILE structures). */
  uintptr_t heap = ((uintptr_t)_sbrk(0) + 64) & ~(uintptr_t)3;
  painted = (uint32_t *)heap;
  for (uint32_t *p = painted; p < sp - 16; p++) *p = PAINT;
}

unsigned tg_platform_stack_peak(void) {
  uint32_t *p = painted;
  while (p < &__stack_top && *p == PAINT) p++;
  return (unsigned)((char *)&__stack_top - (char *)p);
}
