/* What the C firmware needs from the board: leaving with a status, and
   measuring the stack. */
#ifndef TG_PLATFORM_H
#define TG_PLATFORM_H

/* Ends the program: exit status 0 if `success`, else 1 (under QEMU, its
   own exit status). */
void tg_platform_exit(int success);

/* Fills the free RAM between newlib's heap and the stack with a pattern. */
void tg_platform_paint_stack(void);

/* The deepest the stack has reached since tg_platform_paint_stack, in
   bytes below its top. */
unsigned tg_platform_stack_peak(void);

#endif
