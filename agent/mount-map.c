/* mount-map.c — where a file is within its filesystem, whatever mount it was
 * opened through: a bind mount, or a mount in another process's namespace (a
 * container). The event fd's path is as seen through its mount; mountinfo says
 * which directory of the filesystem that mount shows. Reads only procfs, never a
 * file on a marked filesystem, so the event thread may call it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mount-map.h"

struct mount_entry {
        uint64_t id;
        char *root;             /* directory of the filesystem shown at the mount point */
        char *point;            /* mount point */
};

struct mount_table {
        struct mount_entry *e;
        size_t n;
};

static struct mount_table own;   /* this process's namespace, refreshed on a miss */

static void table_clear(struct mount_table *t) {
        for (size_t i = 0; i < t->n; i++) {
                free(t->e[i].root);
                free(t->e[i].point);
        }
        free(t->e);
        t->e = NULL;
        t->n = 0;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape(const char *s, size_t n) {
        char *out = malloc(n + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '\\' && i + 3 < n + 1 && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
                    s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
                        *o++ = (char) ((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
                        i += 3;
                } else
                        *o++ = s[i];
        }
        *o = '\0';
        return out;
}

static int table_load(struct mount_table *t, const char *file) {
        FILE *f = fopen(file, "re");
        char *line = NULL;
        size_t cap = 0;

        if (!f)
                return -errno;
        table_clear(t);
        while (getline(&line, &cap, f) > 0) {
                /* id parent major:minor root mountpoint ... */
                unsigned long long id;
                int off = 0;
                if (sscanf(line, "%llu %*u %*u:%*u %n", &id, &off) < 1 || off == 0)
                        continue;
                const char *root = line + off, *sp = strchr(root, ' ');
                if (!sp)
                        continue;
                const char *point = sp + 1, *sp2 = strchr(point, ' ');
                if (!sp2)
                        continue;
                struct mount_entry *ne = realloc(t->e, (t->n + 1) * sizeof(*ne));
                if (!ne)
                        break;
                t->e = ne;
                t->e[t->n].id = id;
                t->e[t->n].root = unescape(root, (size_t) (sp - root));
                t->e[t->n].point = unescape(point, (size_t) (sp2 - point));
                if (t->e[t->n].root && t->e[t->n].point)
                        t->n++;
        }
        free(line);
        fclose(f);
        return 0;
}

static const struct mount_entry *table_find(const struct mount_table *t, uint64_t id) {
        for (size_t i = 0; i < t->n; i++)
                if (t->e[i].id == id)
                        return &t->e[i];
        return NULL;
}

int mount_id_of_fd(int fd, uint64_t *ret) {
        struct statx sx;
        if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0)
                return -errno;
        if (!(sx.stx_mask & STATX_MNT_ID))
                return -ENOTSUP;
        *ret = sx.stx_mnt_id;
        return 0;
}

/* Joins root + (path - point) into ret. */
static int join(const struct mount_entry *m, const char *path, char *ret, size_t size) {
        size_t pl = strlen(m->point);
        const char *rest;
        if (strcmp(m->point, "/") == 0)
                rest = path;
        else if (strncmp(path, m->point, pl) == 0 && (path[pl] == '/' || path[pl] == '\0'))
                rest = path + pl;
        else
                return -EXDEV;
        int n = snprintf(ret, size, "%s%s", strcmp(m->root, "/") == 0 ? "" : m->root, rest);
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        if (ret[0] == '\0')
                snprintf(ret, size, "/");
        return 0;
}

int mount_map_fs_path(uint64_t mnt_id, pid_t pid, const char *path, char *ret, size_t size) {
        const struct mount_entry *m = table_find(&own, mnt_id);
        if (!m) {
                table_load(&own, "/proc/self/mountinfo");
                m = table_find(&own, mnt_id);
        }
        if (m)
                return join(m, path, ret, size);
        if (pid > 0) {
                /* A mount of another namespace: the opener's view has it. */
                struct mount_table theirs = { 0 };
                char file[64];
                snprintf(file, sizeof(file), "/proc/%d/mountinfo", (int) pid);
                int r = table_load(&theirs, file);
                if (r == 0) {
                        m = table_find(&theirs, mnt_id);
                        r = m ? join(m, path, ret, size) : -ENOENT;
                }
                table_clear(&theirs);
                return r;
        }
        return -ENOENT;
}
