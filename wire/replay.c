/* replay.c: placeholder until implemented. */
typedef int bitw_placeholder_replay_;
