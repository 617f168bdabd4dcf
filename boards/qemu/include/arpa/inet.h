// The byte-order helpers axtls's aes.c takes from <arpa/inet.h>, which a
// bare-metal libc lacks (Cortex-M3 is little-endian).
#ifndef AMANAT_ARPA_INET_H
#define AMANAT_ARPA_INET_H
#include <stdint.h>
#define htonl(x) __builtin_bswap32(x)
#define ntohl(x) __builtin_bswap32(x)
#define htons(x) __builtin_bswap16(x)
#define ntohs(x) __builtin_bswap16(x)
#endif
