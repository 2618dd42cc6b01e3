/* mount-map.h — a file's path within its filesystem, independent of the mount
 * (bind mount, container namespace) it was opened through. Watched roots are
 * compared in this form, with the device, so that no other mount of the same
 * directory slips past the scope check. */
#ifndef MODELGATE_MOUNT_MAP_H
#define MODELGATE_MOUNT_MAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The mount an fd was opened through (statx STATX_MNT_ID). 0 or -errno. */
int mount_id_of_fd(int fd, uint64_t *ret);

/* path: the fd's path as readlink(/proc/self/fd/N) gives it. Writes the path
 * within the filesystem into ret. Looks the mount up in this process's mountinfo,
 * then in /proc/<pid>/mountinfo (the opener's namespace). 0 or -errno. */
int mount_map_fs_path(uint64_t mnt_id, pid_t pid, const char *path, char *ret, size_t size);

#endif
