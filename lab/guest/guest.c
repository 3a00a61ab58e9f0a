/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tandem-guest: a tiny multiboot (ELF32) kernel that the lab boots under QEMU to prove that live
 * migration and failover keep a VM's memory, its run and its disk data.
 *
 * On COM1 it prints (one key=value line each; lab/guest/serial.py parses them):
 *   tandem-guest: booted mem=64MiB fill=16MiB dirty=4096KiB pm=0x600
 *   tandem-guest: disk gen=41 boots=3            (or "disk none", "disk fresh", "disk error=...")
 *   tandem-guest: running
 *   tandem-guest: alive t=1 gen=42               every second (t counts delivered 100 Hz PIT ticks)
 *   tandem-guest: verify=ok t=2 pass=1           every verify_s seconds (verify=CORRUPT fill_bad=N dirty_bad=N)
 *   tandem-guest: poweroff reason=acpi-power-button
 *
 * Memory: fill_mb MiB get a pattern at boot, re-verified every verify_s seconds; a dirty_kb KiB working
 * set is rewritten every tick (one store per 4 KiB page) and each page is checked to still hold the
 * previous tick's value first, so a page lost in the last pass of a migration shows up as dirty_bad.
 * Disk: sector 0 of the primary ATA master holds a generation record (layout in lab/guest/disk.py); at
 * boot the guest reads it, counts a boot, and then writes gen+1 every gen_s seconds (ATA PIO + FLUSH),
 * first into its journal slot, sector 1 + (gen+1) % JOURNAL, then into sector 0: a copy that missed a write
 * keeps an older record in that slot even after later writes, which sector 0 alone would hide.
 * ACPI: it polls PM1 PWRBTN_STS and enters S5 itself, so `virsh shutdown` is a real graceful shutdown.
 * Idle it sleeps in hlt. Kernel command line: "fill_mb=16 dirty_kb=4096 verify_s=2 gen_s=1"; corrupt_s=N
 * damages one filled word and one dirty page at second N, so tests can prove that the checks detect it.
 */
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

__asm__(".section .multiboot,\"a\"\n"
        ".align 4\n"
        ".long 0x1BADB002\n.long 0x00000003\n.long -(0x1BADB002+0x00000003)\n"
        ".text\n"
        ".globl _start\n_start:\n"
        "  cli\n  mov $stack_top, %esp\n  push %ebx\n  push %eax\n  call kmain\n"
        "1: cli\n  hlt\n  jmp 1b\n"
        ".globl irq0_stub\nirq0_stub:\n  pusha\n  call irq0_handler\n  popa\n  iret\n"
        ".globl spur_stub\nspur_stub:\n  pusha\n  call spur_handler\n  popa\n  iret\n"
        ".globl exc_stub\nexc_stub:\n  call exc_handler\n2: cli\n  hlt\n  jmp 2b\n"
        ".bss\n.align 16\nstack_bottom: .skip 16384\nstack_top:\n"
        ".text\n");

static inline void outb(u16 p, u8 v) { __asm__ volatile("outb %0,%1" ::"a"(v), "Nd"(p)); }
static inline void outw(u16 p, u16 v) { __asm__ volatile("outw %0,%1" ::"a"(v), "Nd"(p)); }
static inline void outl(u16 p, u32 v) { __asm__ volatile("outl %0,%1" ::"a"(v), "Nd"(p)); }
static inline u8 inb(u16 p) { u8 v; __asm__ volatile("inb %1,%0" : "=a"(v) : "Nd"(p)); return v; }
static inline u16 inw(u16 p) { u16 v; __asm__ volatile("inw %1,%0" : "=a"(v) : "Nd"(p)); return v; }
static inline u32 inl(u16 p) { u32 v; __asm__ volatile("inl %1,%0" : "=a"(v) : "Nd"(p)); return v; }

/* ---- serial console (COM1, 115200 8N1) ---- */
#define COM1 0x3f8

static void putc(char c) {
    if (c == '\n') putc('\r');
    for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
        ;
    outb(COM1, (u8)c);
}
static void puts(const char *s) { while (*s) putc(*s++); }
static void putu(u32 v) {
    char b[12];
    int i = 0;
    do { b[i++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (i) putc(b[--i]);
}
static void putx(u32 v) {
    puts("0x");
    for (int i = 12; i >= 0; i -= 4) putc("0123456789abcdef"[(v >> i) & 15]);
}
static void say(const char *s) { puts("tandem-guest: "); puts(s); }

/* ---- interrupts: flat GDT, IDT, PIC with only IRQ0, PIT at 100 Hz ---- */
struct idt_entry { u16 off_lo, sel; u8 zero, type; u16 off_hi; } __attribute__((packed));
struct dtr { u16 limit; u32 base; } __attribute__((packed));
static unsigned long long gdt[3] = {0, 0x00cf9a000000ffffULL, 0x00cf92000000ffffULL};
static struct idt_entry idt[256];
extern void irq0_stub(void), spur_stub(void), exc_stub(void);

static volatile u32 ticks;
void irq0_handler(void) { ticks++; outb(0x20, 0x20); }
void spur_handler(void) { outb(0xa0, 0x20); outb(0x20, 0x20); }
void exc_handler(void) { say("CPU exception, halting\n"); }

static void set_gate(int n, void (*f)(void)) {
    u32 a = (u32)f;
    idt[n].off_lo = (u16)(a & 0xffff); idt[n].off_hi = (u16)(a >> 16);
    idt[n].sel = 0x08; idt[n].zero = 0; idt[n].type = 0x8e;
}

static void setup_interrupts(void) {
    struct dtr g = {sizeof(gdt) - 1, (u32)gdt};
    __asm__ volatile("lgdt %0\n ljmp $0x08,$1f\n1: mov $0x10,%%ax\n mov %%ax,%%ds\n mov %%ax,%%es\n"
                     " mov %%ax,%%ss\n mov %%ax,%%fs\n mov %%ax,%%gs\n" ::"m"(g) : "eax", "memory");
    for (int i = 0; i < 32; i++) set_gate(i, exc_stub);
    for (int i = 32; i < 256; i++) set_gate(i, spur_stub);
    set_gate(32, irq0_stub);
    struct dtr d = {sizeof(idt) - 1, (u32)idt};
    __asm__ volatile("lidt %0" ::"m"(d));
    outb(0x20, 0x11); outb(0xa0, 0x11); outb(0x21, 0x20); outb(0xa1, 0x28);
    outb(0x21, 4); outb(0xa1, 2); outb(0x21, 1); outb(0xa1, 1);
    outb(0x21, 0xfe); outb(0xa1, 0xff);
    u16 div = 11932; /* 1193182 Hz / 100 */
    outb(0x43, 0x36); outb(0x40, (u8)(div & 0xff)); outb(0x40, (u8)(div >> 8));
}

/* ---- kernel command line ---- */
static u32 arg(const char *cmd, const char *key, u32 def) {
    if (!cmd) return def;
    for (const char *p = cmd; *p; p++) {
        if (p != cmd && p[-1] != ' ') continue;
        const char *k = key, *q = p;
        while (*k && *q == *k) { k++; q++; }
        if (!*k && *q == '=') {
            u32 v = 0;
            q++;
            while (*q >= '0' && *q <= '9') v = v * 10 + (u32)(*q++ - '0');
            return v;
        }
    }
    return def;
}

/* ---- ACPI PM block: from the chipset's PCI config (PIIX4 on pc, ICH9 on q35), else SeaBIOS's 0x600 ---- */
static u32 pci_read(u32 dev, u32 fn, u32 reg) {
    outl(0xcf8, 0x80000000u | (dev << 11) | (fn << 8) | (reg & 0xfc));
    return inl(0xcfc);
}

static u16 find_pmbase(void) {
    if (pci_read(1, 3, 0) == 0x71138086u) return (u16)(pci_read(1, 3, 0x40) & 0xffc0); /* PIIX4 PM */
    if (pci_read(31, 0, 0) == 0x29188086u) return (u16)(pci_read(31, 0, 0x40) & 0xff80); /* ICH9 LPC */
    return 0x600;
}

/* ---- ATA PIO, primary channel, master drive, LBA28 ---- */
#define ATA 0x1f0
#define ATA_CTL 0x3f6
#define ST_ERR 0x01
#define ST_DRQ 0x08
#define ST_DF 0x20
#define ST_BSY 0x80

static const char *ata_error;

/* An ATA command may take up to 30 s, as Linux allows a disk command: a replicated disk stalls that long
 * while DRBD declares a lost peer dead and fences it, its I/O frozen meanwhile. Interrupts are let in while
 * waiting so that the PIT keeps time (the main loop runs with them off). */
#define ATA_TIMEOUT_TICKS 3000u

static int ata_wait(int want_drq) {
    u32 start = ticks;
    for (;;) {
        u8 s = inb(ATA + 7);
        if (s == 0xff) { ata_error = "no-controller"; return -1; }
        if (!(s & ST_BSY)) {
            if (s & (ST_ERR | ST_DF)) { ata_error = "device-error"; return -1; }
            if (!want_drq || (s & ST_DRQ)) return 0;
        }
        if (ticks - start >= ATA_TIMEOUT_TICKS) break;
        __asm__ volatile("sti; nop; cli" ::: "memory");
    }
    ata_error = "timeout";
    return -1;
}

static int ata_identify(void) {
    outb(ATA_CTL, 0x02); /* nIEN: the guest polls, IRQ14 stays quiet */
    outb(ATA + 6, 0xa0);
    for (int i = 2; i <= 5; i++) outb((u16)(ATA + i), 0);
    outb(ATA + 7, 0xec);
    u8 s = inb(ATA + 7);
    if (s == 0 || s == 0xff) return 0;
    if (ata_wait(0) < 0) return 0;
    if (inb(ATA + 4) || inb(ATA + 5)) return 0; /* ATAPI/SATA signature: not a plain disk */
    if (ata_wait(1) < 0) return 0;
    for (int i = 0; i < 256; i++) (void)inw(ATA);
    return 1;
}

static int ata_cmd(u32 lba, u8 cmd) {
    if (ata_wait(0) < 0) return -1;
    outb(ATA + 6, (u8)(0xe0 | ((lba >> 24) & 0x0f)));
    outb(ATA + 2, 1);
    outb(ATA + 3, (u8)lba); outb(ATA + 4, (u8)(lba >> 8)); outb(ATA + 5, (u8)(lba >> 16));
    outb(ATA + 7, cmd);
    return 0;
}

static int ata_read(u32 lba, u16 *buf) {
    if (ata_cmd(lba, 0x20) < 0 || ata_wait(1) < 0) return -1;
    for (int i = 0; i < 256; i++) buf[i] = inw(ATA);
    return 0;
}

static int ata_write(u32 lba, const u16 *buf) {
    if (ata_cmd(lba, 0x30) < 0 || ata_wait(1) < 0) return -1;
    for (int i = 0; i < 256; i++) outw(ATA, buf[i]);
    if (ata_wait(0) < 0) return -1;
    outb(ATA + 7, 0xe7); /* FLUSH CACHE: the write is on the host's device when this completes */
    return ata_wait(0);
}

/* ---- generation record in sector 0 (must match lab/guest/disk.py) ---- */
#define REC_WORDS 6 /* magic[2], gen, boots, uptime_s, check */
#define JOURNAL 64  /* journal slots, sectors 1..64 (must match lab/guest/disk.py) */
static const u32 rec_magic[2] = {0x444e4154u, 0x314e4547u}; /* "TANDGEN1" little-endian */

static u32 fnv1a(const u8 *p, u32 n) {
    u32 h = 2166136261u;
    while (n--) { h ^= *p++; h *= 16777619u; }
    return h;
}

static union { u16 w[256]; u32 d[128]; u8 b[512]; } sector;
static int disk_ok;
static u32 gen, boots;

static void disk_boot(void) {
    if (!ata_identify()) { say("disk none\n"); return; }
    if (ata_read(0, sector.w) < 0) { say("disk error="); puts(ata_error); puts("\n"); return; }
    disk_ok = 1;
    if (sector.d[0] == rec_magic[0] && sector.d[1] == rec_magic[1] &&
        sector.d[5] == fnv1a(sector.b, 20)) {
        gen = sector.d[2]; boots = sector.d[3];
        say("disk gen="); putu(gen); puts(" boots="); putu(boots); puts("\n");
    } else if (sector.d[0] == rec_magic[0]) {
        say("disk CORRUPT record, starting at gen=0\n");
    } else {
        say("disk fresh\n");
    }
    boots++;
}

/* Returns 0 when the next generation is on the disk. */
static int disk_write_gen(u32 uptime_s) {
    for (int i = 0; i < 128; i++) sector.d[i] = 0;
    sector.d[0] = rec_magic[0]; sector.d[1] = rec_magic[1];
    sector.d[2] = gen + 1; sector.d[3] = boots; sector.d[4] = uptime_s;
    sector.d[5] = fnv1a(sector.b, 20);
    if (ata_write(1 + (gen + 1) % JOURNAL, sector.w) < 0) return -1;
    if (ata_write(0, sector.w) < 0) return -1;
    gen++;
    return 0;
}

/* ---- memory pattern ---- */
static u32 pattern(u32 i) { return i * 2654435761u ^ 0x5a5aa5a5u; }

void kmain(u32 magic, u32 *mbi) {
    outb(COM1 + 1, 0); outb(COM1 + 3, 0x80); outb(COM1, 1); outb(COM1 + 1, 0);
    outb(COM1 + 3, 3); outb(COM1 + 2, 0xc7); outb(COM1 + 4, 0x0b);
    puts("\n");

    const char *cmd = 0;
    u32 mem_kb = 64 * 1024;
    if (magic == 0x2BADB002) {
        if (mbi[0] & 1) mem_kb = mbi[2] + 1024;
        if (mbi[0] & 4) cmd = (const char *)mbi[4];
    }
    u32 fill_mb = arg(cmd, "fill_mb", 16), dirty_kb = arg(cmd, "dirty_kb", 4096);
    u32 verify_s = arg(cmd, "verify_s", 2), gen_s = arg(cmd, "gen_s", 1), corrupt_s = arg(cmd, "corrupt_s", 0);
    if (!verify_s) verify_s = 1;
    u32 base = 8u << 20; /* the first 8 MiB hold the kernel, its stack and the BIOS */
    u32 avail = mem_kb * 1024u > base + (1u << 20) ? mem_kb * 1024u - base - (1u << 20) : 0;
    if ((fill_mb << 20) > avail) fill_mb = avail >> 20;
    if ((dirty_kb << 10) > avail - (fill_mb << 20)) dirty_kb = (avail - (fill_mb << 20)) >> 10;
    volatile u32 *fill = (volatile u32 *)base;
    volatile u32 *dirty = (volatile u32 *)(base + (fill_mb << 20));
    u32 nfill = (fill_mb << 20) / 4, npages = dirty_kb / 4;
    u16 pm = find_pmbase();

    say("booted mem="); putu(mem_kb / 1024); puts("MiB fill="); putu(fill_mb);
    puts("MiB dirty="); putu(dirty_kb); puts("KiB pm="); putx(pm); puts("\n");
    for (u32 i = 0; i < nfill; i++) fill[i] = pattern(i);
    for (u32 p = 0; p < npages; p++) dirty[p * 1024] = 0;
    setup_interrupts();
    disk_boot();
    outw(pm, 0xffff);       /* clear PM1 status */
    outw(pm + 2, 0x0100);   /* PM1 enable: power button */

    u32 done = 0, secs = 0, passes = 0, dirty_bad = 0;
    if (disk_ok && gen_s && disk_write_gen(0) < 0) { say("disk error="); puts(ata_error); puts("\n"); }
    say("running\n");
    for (;;) {
        __asm__ volatile("sti; hlt; cli" ::: "memory");
        while (done != ticks) {
            if (corrupt_s && done + 1 == corrupt_s * 100) { /* self-test: damage both, just before second N */
                if (nfill) fill[nfill / 2] ^= 1;
                if (npages) dirty[0] ^= 1;
            }
            for (u32 p = 0; p < npages; p++) {
                if (dirty[p * 1024] != done) dirty_bad++;
                dirty[p * 1024] = done + 1;
            }
            done++;
            if (done % 100 == 0) {
                secs++;
                if (disk_ok && gen_s && secs % gen_s == 0 && disk_write_gen(secs) < 0) {
                    say("disk error="); puts(ata_error); puts("\n");
                }
                say("alive t="); putu(secs);
                if (disk_ok) { puts(" gen="); putu(gen); }
                puts("\n");
                if (secs % verify_s == 0) {
                    u32 bad = 0;
                    for (u32 i = 0; i < nfill; i++)
                        if (fill[i] != pattern(i)) bad++;
                    passes++;
                    say(bad || dirty_bad ? "verify=CORRUPT" : "verify=ok");
                    puts(" t="); putu(secs); puts(" pass="); putu(passes);
                    if (bad || dirty_bad) { puts(" fill_bad="); putu(bad); puts(" dirty_bad="); putu(dirty_bad); }
                    puts("\n");
                    dirty_bad = 0;
                }
            }
            if (inw(pm) & 0x0100) {
                outw(pm, 0x0100);
                say("poweroff reason=acpi-power-button\n");
                outw(pm + 4, 0x2000); /* SLP_EN with SLP_TYP=0: S5 in QEMU's DSDT */
            }
        }
    }
}
