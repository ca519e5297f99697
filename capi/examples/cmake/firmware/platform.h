/* What the C firmware needs from the board: leaving with a status. */
#ifndef TG_PLATFORM_H
#define TG_PLATFORM_H

/* Ends the program: exit status 0 if `success`, else 1 (under QEMU, its
   own exit status). */
void tg_platform_exit(int success);

#endif
