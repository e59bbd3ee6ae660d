/* Whole-file reading and all-or-nothing file replacement. */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"

cvis_status cvis__file_read(const char *path, void **data, size_t *size)
{
    CVIS_CHECK_ARG(path && data && size, "path, data or size is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cvis__fail(CVIS_E_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    int fs = fstat(fd, &sb), err = errno;
    if (fs != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return cvis__fail(CVIS_E_IO, "cannot read %s: %s", path,
                          fs != 0 ? strerror(err) : "not a regular file");
    }
    uint64_t n = (uint64_t)sb.st_size;
    unsigned char *buf = NULL;
    cvis_status st = n > SIZE_MAX ? cvis__fail(CVIS_E_LIMIT, "%s is too large", path)
                                  : cvis__alloc((size_t)n, "the file's contents", (void **)&buf);
    size_t got = 0;
    while (st == CVIS_OK && got < n) {
        ssize_t r = read(fd, buf + got, (size_t)n - got > (1u << 30) ? (1u << 30) : (size_t)n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            st = cvis__fail(CVIS_E_IO, "cannot read %s: %s", path,
                            r < 0 ? strerror(errno) : "the file shrank while being read");
        else
            got += (size_t)r;
    }
    close(fd);
    if (st != CVIS_OK) {
        cvis__free(buf);
        return st;
    }
    *data = buf;
    *size = (size_t)n;
    return CVIS_OK;
}

static void release(cvis__file_out *o)
{
    cvis__free(o->tmp);
    cvis__free(o->path);
    memset(o, 0, sizeof *o);
}

cvis_status cvis__file_out_open(const char *path, cvis__file_out *o)
{
    CVIS_CHECK_ARG(path && o && *path, "path or o is NULL");
    memset(o, 0, sizeof *o);
    size_t n = strlen(path) + 64;
    o->tmp = cvis__malloc(n);
    o->path = cvis__strdup(path);
    if (!o->tmp || !o->path) {
        release(o);
        return cvis__fail(CVIS_E_NOMEM, "out of memory opening %s", path);
    }
    /* A name no other writer uses: pid, clock and a stack address (distinct
     * per thread); O_EXCL settles any remaining collision. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    unsigned long salt = (unsigned long)(uintptr_t)&ts ^ (unsigned long)ts.tv_nsec;
    int fd = -1;
    for (unsigned k = 0; k < 100 && fd < 0; k++) {
        snprintf(o->tmp, n, "%s.%ld.%lx.%u.tmp", path, (long)getpid(), salt, k);
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        cvis_status st = cvis__fail(CVIS_E_IO, "cannot create a file beside %s: %s", path,
                                    strerror(errno));
        release(o);
        return st;
    }
    o->f = fdopen(fd, "wb");
    if (!o->f) {
        cvis_status st = cvis__fail(CVIS_E_IO, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(o->tmp);
        release(o);
        return st;
    }
    return CVIS_OK;
}

cvis_status cvis__file_out_commit(cvis__file_out *o)
{
    cvis_status st = CVIS_OK;
    if (fflush(o->f) != 0 || fsync(fileno(o->f)) != 0)
        st = cvis__fail(CVIS_E_IO, "cannot write %s: %s", o->path, strerror(errno));
    if (fclose(o->f) != 0 && st == CVIS_OK)
        st = cvis__fail(CVIS_E_IO, "cannot write %s: %s", o->path, strerror(errno));
    o->f = NULL;
    if (st == CVIS_OK && rename(o->tmp, o->path) != 0)
        st = cvis__fail(CVIS_E_IO, "cannot replace %s: %s", o->path, strerror(errno));
    if (st != CVIS_OK)
        unlink(o->tmp);
    release(o);
    return st;
}

void cvis__file_out_abort(cvis__file_out *o)
{
    if (!o || !o->tmp)
        return;
    if (o->f)
        fclose(o->f);
    unlink(o->tmp);
    release(o);
}
