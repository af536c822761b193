/* selector.c: placeholder until implemented. */
typedef int bitw_placeholder_selector_;
