/* txq.c: placeholder until implemented. */
typedef int bitw_placeholder_txq_;
