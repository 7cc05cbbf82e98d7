/* The ABI version of this libewtp and the copy rule of ewtp/abi.h. */
#include <string.h>

#include <ewtp/abi.h>

unsigned ewtp_abi_major(void)
{
    return EWTP_ABI_MAJOR;
}

unsigned ewtp_abi_minor(void)
{
    return EWTP_ABI_MINOR;
}

void ewtp_sized_copy(void *dst, size_t dst_size, const void *src)
{
    size_t src_size = 0;
    if (dst == NULL || dst_size < sizeof(size_t))
        return;
    if (src != NULL)
        memcpy(&src_size, src, sizeof src_size);
    if (src_size < sizeof(size_t))
        src_size = 0;
    size_t n = src_size < dst_size ? src_size : dst_size;
    if (n > 0)
        memcpy(dst, src, n);
    memset((char *)dst + n, 0, dst_size - n);
    memcpy(dst, &dst_size, sizeof dst_size);
}

void ewtp_sized_clear(void *obj)
{
    size_t size = 0;
    if (obj == NULL)
        return;
    memcpy(&size, obj, sizeof size);
    if (size > sizeof(size_t))
        memset((char *)obj + sizeof(size_t), 0, size - sizeof(size_t));
}
