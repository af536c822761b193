/* csum.c: placeholder until implemented. */
typedef int bitw_placeholder_csum_;
