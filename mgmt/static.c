/* static.c: the web UI's files from --web-root: content types, ETags, no way out of the root, SPA fallback. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

#include "bitwd.h"

#define STATIC_FILE_MAX (16u << 20)   /* the UI's files are small; anything bigger is not ours to serve */

/* The resolved root ("" = no web UI); one daemon per process, set once at start. */
static char web_root[PATH_MAX];

void static_init(struct bitwd *d)
{
	const char *dir = d->opt.web_root;
	struct stat st;

	web_root[0] = '\0';
	if (!dir || !*dir)
		return;
	if (!realpath(dir, web_root) || stat(web_root, &st) < 0 || !S_ISDIR(st.st_mode)) {
		mlog(1, "web UI: %s is not a directory (%s); serving the API only", dir,
		     errno ? strerror(errno) : "not a directory");
		web_root[0] = '\0';
		return;
	}
	mlog(2, "web UI from %s", web_root);
}

bool static_wants(const struct req *r)
{
	if (!web_root[0] || (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0))
		return false;
	/* the API and the metrics keep their own 404s and 405s */
	return strncmp(r->path, "/api/", 5) != 0 && strcmp(r->path, "/api") != 0 && strcmp(r->path, "/metrics") != 0;
}

static const char *content_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".mjs", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".json", "application/json" },
		{ ".svg", "image/svg+xml" },
		{ ".png", "image/png" },
		{ ".ico", "image/x-icon" },
		{ ".woff2", "font/woff2" },
		{ ".txt", "text/plain; charset=utf-8" },
	};
	const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');

	if (dot && (!slash || dot > slash))
		for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
			if (strcmp(dot, types[i].ext) == 0)
				return types[i].type;
	return "application/octet-stream";
}

/* Only plain names: no "." or ".." segment, nothing hidden, no empty segment but a final one. */
static bool path_is_plain(const char *path)
{
	const char *p = path;

	if (*p != '/')
		return false;
	while (*p == '/') {
		const char *seg = ++p;
		p = strchrnul(seg, '/');
		if (seg[0] == '.' || (p == seg && *p))
			return false;
	}
	return true;
}

/* The last segment names no file type: a client-side route such as /policies gets index.html. */
static bool looks_like_route(const char *path)
{
	const char *slash = strrchr(path, '/');

	return !strchr(slash ? slash : path, '.');
}

/* The file's real path when it is a regular file inside the root; symlinks may not lead out of it. */
static int resolve(const char *rel, char out[PATH_MAX])
{
	char joined[PATH_MAX];
	size_t n = strlen(web_root);
	struct stat st;

	if (strcmp(rel, "/") == 0)
		rel = "/index.html";
	if (snprintf(joined, sizeof joined, "%s%s", web_root, rel) >= (int)sizeof joined || !realpath(joined, out))
		return -1;
	if (strncmp(out, web_root, n) != 0 || out[n] != '/')
		return -1;
	if (stat(out, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	return 0;
}

static char *read_file(const char *path, size_t *len, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *buf = NULL;
	size_t got = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || (uint64_t)st->st_size > STATIC_FILE_MAX)
		goto out;
	if (!(buf = malloc((size_t)st->st_size + 1)))
		goto out;
	while (got < (size_t)st->st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st->st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	*len = got;
out:
	close(fd);
	return buf;
}

static void not_found(struct req *r)
{
	reply_problem(r, 404, "NOT_FOUND", NULL, "no such file");
}

void static_serve(struct req *r)
{
	char path[PATH_MAX], etag[64];
	struct stat st;
	size_t len = 0;
	char *body;
	const char *inm;

	if (!path_is_plain(r->path)) {
		mlog(3, "%s: refused a path outside the web root: %s", r->remote, r->path);
		not_found(r);
		return;
	}
	if (resolve(r->path, path) < 0 && (!looks_like_route(r->path) || resolve("/", path) < 0)) {
		not_found(r);
		return;
	}
	if (!(body = read_file(path, &len, &st))) {
		mlog(1, "web UI: cannot read %s: %s", path, strerror(errno));
		not_found(r);
		return;
	}
	snprintf(etag, sizeof etag, "\"%" PRIx64 "-%" PRIx64 "-%lx\"", (uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec,
	         (unsigned long)st.st_mtim.tv_nsec);
	inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (inm && strcmp(inm, etag) == 0) {
		free(body);
		reply_text(r, MHD_HTTP_NOT_MODIFIED, NULL, NULL);
	} else {
		reply_text(r, MHD_HTTP_OK, content_type(path), body);
		r->resp_len = len;
	}
	r->web = true;
	reply_header(r, "ETag", etag);
}
