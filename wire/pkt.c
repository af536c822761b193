/* pkt.c: placeholder until implemented. */
typedef int bitw_placeholder_pkt_;
