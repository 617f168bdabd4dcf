// What the qemu port leaves to the board: a clock for littlefs's file times,
// and os.urandom. The port's own mp_hal_get_random is an LCG that starts from
// the same state at every boot; this one is SHA-256 in counter mode over a
// 32-byte seed the launcher loads at SEED_ADDR (QEMU's -device loader), so
// salts, IVs and BIP340 aux randomness differ between runs.
#include <stdint.h>
#include <string.h>
#include "py/mphal.h"
#include "lib/crypto-algorithms/sha256.h"

#define SEED_ADDR 0x21400000  // just above the 4 MiB flash region at 0x21000000

uint64_t mp_hal_time_ns(void) {
    return (uint64_t)mp_hal_ticks_ms() * 1000000;
}

void __wrap_mp_hal_get_random(size_t n, uint8_t *buf) {
    static uint32_t counter;
    uint8_t block[32];
    while (n) {
        CRYAL_SHA256_CTX ctx;
        sha256_init(&ctx);
        sha256_update(&ctx, (const uint8_t *)SEED_ADDR, 32);
        sha256_update(&ctx, (const uint8_t *)&counter, sizeof(counter));
        sha256_final(&ctx, block);
        counter++;
        size_t k = n < sizeof(block) ? n : sizeof(block);
        memcpy(buf, block, k);
        buf += k;
        n -= k;
    }
}
