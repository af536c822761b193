/* state.c: placeholder until implemented. */
typedef int bitw_placeholder_state_;
