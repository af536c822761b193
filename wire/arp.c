/* arp.c: placeholder until implemented. */
typedef int bitw_placeholder_arp_;
