/* policy.c: the SPD table (policies) and its ordering. */
#include <stdlib.h>
#include <string.h>

#include "db_int.h"

#define POLICY_COLS \
	"id, name, priority, position, action, direction, src, dst, src_port, dst_port, protocol, mode, peer," \
	" mss_clamp, created, updated, ike_peer_id, esp_proposals, child_lifetime, ecn, df, pad_check, tfc_pad," \
	" dummy_interval_ms, icv_96, sa_type, ah_proposals, clone"

static const char SQL_INSERT[] =
	"INSERT INTO policies (id, name, priority, position, action, direction, src, dst, src_port, dst_port,"
	" protocol, mode, peer, mss_clamp, created, updated, ike_peer_id, esp_proposals, child_lifetime,"
	" ecn, df, pad_check, tfc_pad, dummy_interval_ms, icv_96, sa_type, ah_proposals, clone)"
	" VALUES (?1, ?2, ?3, coalesce(?4, (SELECT coalesce(max(position) + 1, 0) FROM policies)),"
	" ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24,"
	" ?25, ?26, ?27)"
	" RETURNING id, position";
static const char SQL_UPDATE[] =
	"UPDATE policies SET name = ?2, priority = ?3, position = coalesce(?4, position), action = ?5, direction = ?6, src = ?7,"
	" dst = ?8, src_port = ?9, dst_port = ?10, protocol = ?11, mode = ?12, peer = ?13, mss_clamp = ?14,"
	" updated = ?15, ike_peer_id = ?16, esp_proposals = ?17, child_lifetime = ?18, ecn = ?19, df = ?20,"
	" pad_check = ?21, tfc_pad = ?22, dummy_interval_ms = ?23, icv_96 = ?24, sa_type = ?25, ah_proposals = ?26,"
	" clone = ?27 WHERE id = ?1";
static const char SQL_DELETE[] = "DELETE FROM policies WHERE id = ?1";
static const char SQL_GET[] = "SELECT " POLICY_COLS " FROM policies WHERE id = ?1";
static const char SQL_GET_NAME[] = "SELECT " POLICY_COLS " FROM policies WHERE name = ?1";
static const char SQL_LIST[] =
	"SELECT " POLICY_COLS " FROM policies ORDER BY priority, position, id LIMIT ?2 OFFSET ?1";
static const char SQL_COUNT[] = "SELECT count(*) FROM policies";
static const char SQL_SET_POS[] = "UPDATE policies SET position = ?2, updated = ?3 WHERE id = ?1";

void db_policy_init(struct db_policy *p)
{
	memset(p, 0, sizeof *p);
	p->priority = 4;
	p->position = -1;
	strcpy(p->direction, "both");
	strcpy(p->src, "any");
	strcpy(p->dst, "any");
	strcpy(p->src_port, "any");
	strcpy(p->dst_port, "any");
	strcpy(p->protocol, "any");
	strcpy(p->mode, "tunnel");
	p->mss_clamp = true;
	p->ecn = true;
	p->pad_check = true;
	strcpy(p->df, "clear");
	strcpy(p->sa_type, "esp");
	strcpy(p->clone, "none");
}

/* ?2..?27 are the same in insert and update. */
static void bind_fields(sqlite3_stmt *st, const struct db_policy *p)
{
	db_bind_text(st, 2, p->name);
	sqlite3_bind_int(st, 3, p->priority);
	db_bind_text(st, 5, p->action);
	db_bind_text(st, 6, p->direction);
	db_bind_text(st, 7, p->src);
	db_bind_text(st, 8, p->dst);
	db_bind_text(st, 9, p->src_port);
	db_bind_text(st, 10, p->dst_port);
	db_bind_text(st, 11, p->protocol);
	db_bind_text(st, 12, p->mode);
	db_bind_opt_text(st, 13, p->peer);
	sqlite3_bind_int(st, 14, p->mss_clamp);
	sqlite3_bind_int64(st, 15, db_now());
	if (p->ike_peer_id > 0)
		sqlite3_bind_int64(st, 16, p->ike_peer_id);
	else
		sqlite3_bind_null(st, 16);
	db_bind_text(st, 17, p->esp_proposals);
	sqlite3_bind_int64(st, 18, p->child_lifetime);
	sqlite3_bind_int(st, 19, p->ecn);
	db_bind_text(st, 20, p->df[0] ? p->df : "clear");
	sqlite3_bind_int(st, 21, p->pad_check);
	sqlite3_bind_int(st, 22, p->tfc_pad);
	sqlite3_bind_int64(st, 23, p->dummy_interval_ms);
	sqlite3_bind_int(st, 24, p->icv_96);
	db_bind_text(st, 25, p->sa_type[0] ? p->sa_type : "esp");
	db_bind_text(st, 26, p->ah_proposals);
	db_bind_text(st, 27, p->clone[0] ? p->clone : "none");
}

static void read_row(sqlite3_stmt *st, struct db_policy *p)
{
	p->id = sqlite3_column_int64(st, 0);
	db_col_text(st, 1, p->name, sizeof p->name);
	p->priority = sqlite3_column_int(st, 2);
	p->position = sqlite3_column_int64(st, 3);
	db_col_text(st, 4, p->action, sizeof p->action);
	db_col_text(st, 5, p->direction, sizeof p->direction);
	db_col_text(st, 6, p->src, sizeof p->src);
	db_col_text(st, 7, p->dst, sizeof p->dst);
	db_col_text(st, 8, p->src_port, sizeof p->src_port);
	db_col_text(st, 9, p->dst_port, sizeof p->dst_port);
	db_col_text(st, 10, p->protocol, sizeof p->protocol);
	db_col_text(st, 11, p->mode, sizeof p->mode);
	db_col_text(st, 12, p->peer, sizeof p->peer);
	p->mss_clamp = sqlite3_column_int(st, 13) != 0;
	p->created = sqlite3_column_int64(st, 14);
	p->updated = sqlite3_column_int64(st, 15);
	p->ike_peer_id = sqlite3_column_int64(st, 16);
	db_col_text(st, 17, p->esp_proposals, sizeof p->esp_proposals);
	p->child_lifetime = sqlite3_column_int64(st, 18);
	p->ecn = sqlite3_column_int(st, 19) != 0;
	db_col_text(st, 20, p->df, sizeof p->df);
	p->pad_check = sqlite3_column_int(st, 21) != 0;
	p->tfc_pad = sqlite3_column_int(st, 22);
	p->dummy_interval_ms = sqlite3_column_int64(st, 23);
	p->icv_96 = sqlite3_column_int(st, 24) != 0;
	db_col_text(st, 25, p->sa_type, sizeof p->sa_type);
	db_col_text(st, 26, p->ah_proposals, sizeof p->ah_proposals);
	db_col_text(st, 27, p->clone, sizeof p->clone);
}

int db_policy_insert(struct db *db, struct db_policy *p)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if ((rc = db_prep(db, SQL_INSERT, &st)) == 0) {
		if (p->id > 0)
			sqlite3_bind_int64(st, 1, p->id);
		if (p->position >= 0)
			sqlite3_bind_int64(st, 4, p->position);
		bind_fields(st, p);
		rc = db_step(db, st);
		if (rc == 1) {
			p->id = sqlite3_column_int64(st, 0);
			p->position = sqlite3_column_int64(st, 1);
			rc = db_run(db, st);
		} else if (rc == 0) {
			rc = db_fail(db, DB_E_IO, NULL, "insert returned no row");
		}
	}
	return db_w_end(db, own, rc);
}

int db_policy_update(struct db *db, const struct db_policy *p)
{
	sqlite3_stmt *st;
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	if ((rc = db_prep(db, SQL_UPDATE, &st)) == 0) {
		sqlite3_bind_int64(st, 1, p->id);
		if (p->position >= 0)
			sqlite3_bind_int64(st, 4, p->position);
		bind_fields(st, p);
		rc = db_run_one(db, st, "policy");
	}
	return db_w_end(db, own, rc);
}

int db_policy_delete(struct db *db, int64_t id)
{
	return db_delete_id(db, SQL_DELETE, id, "policy");
}

static void policy_row(sqlite3_stmt *st, void *out)
{
	read_row(st, out);
}

static int get_one(struct db *db, sqlite3_stmt *st, struct db_policy *out)
{
	return db_read_one(db, st, policy_row, out, "policy");
}

int db_policy_get(struct db *db, int64_t id, struct db_policy *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_GET, &st);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	return get_one(db, st, out);
}

int db_policy_get_by_name(struct db *db, const char *name, struct db_policy *out)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_GET_NAME, &st);

	if (rc)
		return rc;
	db_bind_text(st, 1, name);
	return get_one(db, st, out);
}

int db_policy_list(struct db *db, int64_t offset, int64_t limit, struct db_policy **out)
{
	sqlite3_stmt *st;
	void *arr;
	int rc = db_prep(db, SQL_LIST, &st);

	*out = NULL;
	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, offset < 0 ? 0 : offset);
	sqlite3_bind_int64(st, 2, limit <= 0 ? -1 : limit);
	rc = db_read_all(db, st, policy_row, sizeof **out, &arr);
	*out = arr;
	return rc;
}

int db_policy_count(struct db *db, int64_t *count)
{
	sqlite3_stmt *st;
	int rc = db_prep(db, SQL_COUNT, &st);

	return rc ? rc : db_scalar(db, st, count);
}

int db_policy_reorder(struct db *db, const int64_t *ids, size_t n)
{
	sqlite3_stmt *st;
	int64_t total = 0, now = db_now();
	int own, rc = db_w_begin(db, &own);

	if (rc)
		return rc;
	rc = db_policy_count(db, &total);
	if (rc == 0 && (int64_t)n != total)
		rc = db_fail(db, DB_E_INVALID, "order", "the new order names %zu policies, there are %lld", n,
		             (long long)total);
	/* Every id exactly once: n updates that each hit a row, with no id repeated. */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		for (size_t j = 0; j < i; j++)
			if (ids[j] == ids[i])
				rc = db_fail(db, DB_E_INVALID, "order", "policy %lld named twice", (long long)ids[i]);
		if (rc == 0 && (rc = db_prep(db, SQL_SET_POS, &st)) == 0) {
			sqlite3_bind_int64(st, 1, ids[i]);
			sqlite3_bind_int64(st, 2, (int64_t)i);
			sqlite3_bind_int64(st, 3, now);
			rc = db_run_one(db, st, "policy");
		}
	}
	return db_w_end(db, own, rc);
}
