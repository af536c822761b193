/* flowcache.c: placeholder until implemented. */
typedef int bitw_placeholder_flowcache_;
