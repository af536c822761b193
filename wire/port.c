/* port.c: placeholder until implemented. */
typedef int bitw_placeholder_port_;
