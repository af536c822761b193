/* xe.c: placeholder until implemented. */
typedef int bitw_placeholder_xe_;
