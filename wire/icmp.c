/* icmp.c: placeholder until implemented. */
typedef int bitw_placeholder_icmp_;
