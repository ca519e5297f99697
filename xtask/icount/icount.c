/*
 * icount.c - exact instruction counter between two marker functions, as a
 * QEMU TCG plugin for QEMU 7.2 (as Debian 12 ships it; plugin API version 1)
 * and later (API version 2 and up; QEMU 10 from Debian's backports checked).
 *
 * Build (needs only gcc; no glib, no qemu-plugin.h, which Debian does not ship):
 *   gcc -shared -fPIC -O2 -Wall -Wextra -o target/libicount.so xtask/icount/icount.c
 *
 * Use (addresses from `llvm-nm fw.elf | grep tinygen_bench_`; bit 0, the Thumb
 * bit that readelf shows, may be set or clear - the plugin clears it):
 *   qemu-system-arm -machine mps2-an386 -nographic \
 *     -semihosting-config enable=on,target=native -kernel fw.elf \
 *     -plugin target/libicount.so,start=0x4f5,end=0x4e3 -d plugin
 * Output (on stderr, or in the file given by -D): one line per region,
 *   icount <N>
 * in execution order, each time execution reaches `end` after a `start`.
 *
 * What is counted: N = number of guest instructions executed from the first
 * instruction of the `start` function (inclusive) up to the first instruction
 * of the `end` function (exclusive). So N includes the whole body of the
 * start marker (through its return) and the caller's `bl end`, but not the
 * caller's `bl start` nor anything of the end marker. This fixed overhead is
 * measured by an empty region (`start(); end();`), which should be subtracted
 * to get the kernel alone. Everything executed in between is counted: callees,
 * exception/interrupt handlers, and conditional instructions whose condition
 * fails (QEMU also counts an IT instruction as one instruction). A `start`
 * without an `end` restarts the region; an `end` without a `start` prints
 * nothing. Counting is single-vCPU (the mps2 boards have one core).
 * Instructions are counted, not cycles.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The subset of QEMU 7.2's include/qemu/qemu-plugin.h (API version 1) used. */
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through, never read */
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn, qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags, void *userdata);
/* Gone since QEMU 9 (replaced by a per-vCPU scoreboard API): weak, so the
 * plugin still loads there and counts with a callback per instruction. */
__attribute__((weak)) void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                                      enum qemu_plugin_op op, void *ptr,
                                                                      uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_outs(const char *string);

#define EXPORT __attribute__((visibility("default")))
/* The API version this plugin is written against: 1 (QEMU 7.2, which
 * loads nothing newer), or 2 where the inline add is gone (QEMU >= 9, which
 * loads nothing older); the functions used here are the same in both.
 * QEMU reads it after loading the plugin, so after this constructor. */
EXPORT int qemu_plugin_version = 1;

__attribute__((constructor)) static void choose_version(void)
{
    if (!qemu_plugin_register_vcpu_insn_exec_inline)
        qemu_plugin_version = 2;
}

static uint64_t count;            /* instructions executed so far */
static uint64_t start_addr, end_addr;
static uint64_t start_count;
static int in_region;

/* Marker instructions get this callback instead of the inline add, so the
 * count read here is exactly "instructions before this one", independent of
 * the order in which QEMU emits callbacks and inline ops of one instruction. */
static void on_marker(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    uint64_t pc = (uint64_t)(uintptr_t)udata;
    if (pc == start_addr) {
        start_count = count;
        in_region = 1;
    } else if (in_region) {
        char line[48];
        snprintf(line, sizeof line, "icount %" PRIu64 "\n", count - start_count);
        qemu_plugin_outs(line);
        in_region = 0;
    }
    count++;
}

/* The fallback of the inline add. */
static void on_insn(unsigned int vcpu, void *udata)
{
    (void)vcpu;
    (void)udata;
    count++;
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t pc = qemu_plugin_insn_vaddr(insn);
        if (pc == start_addr || pc == end_addr)
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS,
                                                   (void *)(uintptr_t)pc);
        else if (qemu_plugin_register_vcpu_insn_exec_inline)
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &count, 1);
        else
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_insn, QEMU_PLUGIN_CB_NO_REGS, NULL);
    }
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    int have_start = 0, have_end = 0;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "start=", 6) == 0) {
            start_addr = strtoull(argv[i] + 6, NULL, 0) & ~(uint64_t)1;
            have_start = 1;
        } else if (strncmp(argv[i], "end=", 4) == 0) {
            end_addr = strtoull(argv[i] + 4, NULL, 0) & ~(uint64_t)1;
            have_end = 1;
        } else {
            fprintf(stderr, "icount: unknown argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (!have_start || !have_end || start_addr == end_addr) {
        fprintf(stderr, "icount: need distinct start=0xADDR,end=0xADDR\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    return 0;
}
