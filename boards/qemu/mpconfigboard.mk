# MicroPython board folder (ports/qemu BOARD_DIR) for the Amanat QEMU target:
# mps2-an385 (Cortex-M3) as a stand-in for an ESP32 without PSRAM.
QEMU_ARCH = arm
QEMU_MACHINE = mps2-an385

CFLAGS += -mthumb -mcpu=cortex-m3 -mfloat-abi=soft
CFLAGS += -DQEMU_SOC_MPS2
CFLAGS += -DMICROPY_HW_MCU_NAME='"Cortex-M3"'
LDSCRIPT = mcu/arm/mps2.ld
SRC_BOARD_O = shared/runtime/gchelper_native.o shared/runtime/gchelper_thumb2.o
MPY_CROSS_FLAGS += -march=armv7m

# The heap of an ESP32 without PSRAM: 128 KiB as gc.mem_free() + gc.mem_alloc()
# count it. The area also holds the GC's tables (1.5 bytes per 16-byte block
# and a gap byte: 131072 * 49/48 + 1) and loses up to 12 bytes to aligning
# its end: 134145 + 12, rounded up to a word.
MICROPY_HEAP_SIZE = 134160

# littlefs for the flash, os.urandom (seeded by the launcher, see hal.c).
MICROPY_VFS_LFS2 = 1
CFLAGS += -DMICROPY_PY_OS_URANDOM=1
LDFLAGS += -Wl,--wrap=mp_hal_get_random
SRC_C += $(BOARD_DIR)/hal.c

# cryptolib (AES seals the seed) from axtls's aes.c alone, none of its TLS.
CFLAGS += -DMICROPY_PY_CRYPTOLIB=1 -DMICROPY_SSL_AXTLS=1
CFLAGS += -I$(BOARD_DIR)/include -I$(TOP)/lib/axtls/ssl -I$(TOP)/lib/axtls/crypto -I$(TOP)/extmod/axtls-include
SRC_THIRDPARTY_C += lib/axtls/crypto/aes.c
$(BUILD)/lib/axtls/crypto/aes.o: CFLAGS += -Wno-all -Wno-unused-parameter -Wno-uninitialized -Wno-sign-compare
