/* config.c: placeholder until implemented. */
typedef int bitw_placeholder_config_;
