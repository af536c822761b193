/* ctl.c: placeholder until implemented. */
typedef int bitw_placeholder_ctl_;
