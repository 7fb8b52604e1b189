#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (native/fuzz/corpus/<target>/).

qcow2 images are made by the real qemu-img (Debian's qemu-utils), with
backing chains; pid files and exit records are in BoxLite's formats;
/proc/self/stat, /proc/self/mountinfo and getdents64 buffers are the
kernel's own. Seeds named finding-* are inputs that once found a defect:
this script never touches them. Run from anywhere:

    python3 native/fuzz/make-corpus.py
"""
import ctypes
import os
import shutil
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, 'corpus')


def seed(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def qemu_img(cwd, *args):
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', 'cluster_size=512', *args], cwd=cwd, check=True)


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def with_backing(image, name):
    """image's header pointed at a new backing name, stored at byte 0x100."""
    b = bytearray(image)
    b[8:16] = struct.pack('>Q', 0x100)
    b[16:20] = struct.pack('>I', len(name))
    b[0x100:0x100 + len(name)] = name
    return bytes(b)


def files(*pairs):
    """backing_chain's input: [u8 name length][name][u32 length][data]..."""
    out = b''
    for name, data in pairs:
        out += bytes([len(name)]) + name + struct.pack('>I', len(data)) + data
    return out


def qcow2_seeds(tmp):
    disks = os.path.join(tmp, 'disks')
    os.makedirs(disks)
    qemu_img(disks, 'base.qcow2', '64K')
    qemu_img(disks, '-b', 'base.qcow2', '-F', 'qcow2', 'mid.qcow2')
    qemu_img(disks, '-b', 'mid.qcow2', '-F', 'qcow2', 'top.qcow2')
    # An absolute name the fuzz harness allows (it keeps the walk inside its
    # scratch directory, which is its cwd).
    qemu_img(tmp, '-b', '/proc/self/cwd/disks/base.qcow2', '-F', 'qcow2', 'disks/abs.qcow2')
    qemu_img(disks, '-o', 'compat=0.10', 'v2.qcow2', '64K')
    qemu_img(disks, '-o', 'compat=0.10', '-b', 'v2.qcow2', '-F', 'qcow2', 'v2-top.qcow2')
    base, mid, top, absolute = (read(os.path.join(disks, n)) for n in ('base.qcow2', 'mid.qcow2', 'top.qcow2', 'abs.qcow2'))
    v2, v2top = read(os.path.join(disks, 'v2.qcow2')), read(os.path.join(disks, 'v2-top.qcow2'))

    for name, data in [('qemu-img-base', base), ('qemu-img-overlay', top), ('qemu-img-absolute', absolute),
                       ('qemu-img-v2', v2), ('qemu-img-v2-overlay', v2top),
                       ('raw', b'\0' * 512),
                       ('name-past-eof', with_backing(top, b'x' * 8)[:0x104]),
                       ('name-with-nul', with_backing(top, b'base\0/etc/shadow')),
                       ('name-1023', with_backing(top + b'\0' * 1024, b'n' * 1023)),
                       ('name-1024', with_backing(top + b'\0' * 1024, b'n' * 1024)),
                       ('offset-max', top[:8] + struct.pack('>Q', 0x7fffffffffffffff) + top[16:])]:
        seed('qcow2_header', name, data)

    seed('backing_chain', 'qemu-img-chain', files((b'top.qcow2', top), (b'mid.qcow2', mid), (b'base.qcow2', base)))
    seed('backing_chain', 'qemu-img-absolute', files((b'abs.qcow2', absolute), (b'base.qcow2', base)))
    seed('backing_chain', 'qemu-img-missing-base', files((b'top.qcow2', top), (b'mid.qcow2', mid)))
    seed('backing_chain', 'qemu-img-v2', files((b'v2-top.qcow2', v2top), (b'v2.qcow2', v2)))
    # A loop: qemu-img refuses to make one, so two headers are pointed at
    # each other.
    seed('backing_chain', 'loop', files((b'a', with_backing(top, b'b')), (b'b', with_backing(top, b'a'))))
    seed('backing_chain', 'self-loop', files((b'a', with_backing(top, b'a')),))
    seed('backing_chain', 'not-regular', files((b'a', with_backing(top, b'.')),))
    # 18 levels by qemu-img: one more than the 16 a chain may have.
    qemu_img(disks, 'l0', '64K')
    for i in range(1, 18):
        qemu_img(disks, '-b', f'l{i - 1}', '-F', 'qcow2', f'l{i}')
    seed('backing_chain', 'qemu-img-too-deep',
         files(*[(f'l{i}'.encode(), read(os.path.join(disks, f'l{i}'))) for i in range(17, -1, -1)]))


def record_seeds():
    # shim.pid as BoxLite's shims write it, newest to oldest.
    for name, text in [('pid-capability', '12345\n67890\nservices-mux-v1\n'),
                       ('pid-no-fingerprint', '7\n\nservices-mux-v1\n'),
                       ('pid-legacy-fingerprint', '4321\n98765432\n'),
                       ('pid-oldest', '7\n'),
                       ('pid-crlf', '7\r\n'),
                       ('pid-spaces', ' \t12 \n'),
                       ('pid-nbsp-bom', '\u00a0\ufeff12\n'),
                       ('pid-leading-zero', '0012\n'),
                       ('pid-too-big', '2147483648\n'),
                       ('pid-max', '2147483647\n')]:
        seed('records', name, text)
    # exit and exit.json as BoxLite's shim and guest write them.
    for name, text in [('exit-signal', '{"type":"signal","exit_code":134,"signal":"SIGABRT"}'),
                       ('exit-panic', '{"type":"panic","exit_code":101,"message":"boom","location":"main.rs:42:5"}'),
                       ('exit-error', '{"type":"error","exit_code":1,"message":"failed"}'),
                       ('exit-error-unsupported',
                        '{"type":"error","exit_code":1,"message":"no kvm","error_kind":"unsupported"}'),
                       ('exit-container', '{"exit_code":137}'),
                       ('exit-empty', '')]:
        seed('records', name, text)
    seed('records', 'pid-over-cap', '1\n' + 'x' * 4095)
    seed('records', 'exit-over-cap', '{' + ' ' * (64 * 1024))


def kernel_seeds(tmp):
    seed('proc_stat', 'self', read('/proc/self/stat'))
    seed('proc_stat', 'comm-with-parens', b'42 (a) b (c) S' + b' 1' * 40 + b'\n')
    seed('proc_stat', 'comm-with-spaces', b'42 (x y z) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 98765 1 1\n')
    seed('proc_stat', 'truncated', b'42 (sh) S 1 2 3')

    # The kernel's own lines for the usual system mounts (the rest of this
    # machine's table is no seed's business).
    keep = {b'/', b'/proc', b'/sys', b'/dev', b'/dev/shm', b'/tmp', b'/run'}
    info = b''.join(line + b'\n' for line in read('/proc/self/mountinfo').splitlines() if line.split(b' ')[4] in keep)
    seed('mountinfo', 'raw-self', b'\x01\x00' + info)
    seed('mountinfo', 'raw-escapes', b'\x01\x02' + b'36 35 98:0 / /a\\040b\\134c rw - ext4 /dev/x rw\n'
         b'37 36 98:0 / /a\\040b\\134c/d\\012e ro,nosuid - ext4 /dev/x ro\n7 1 0:1 / /a\\777 ro -\n')
    # Structured: [u8 id][u8 flags: ro | where << 1][u8 n][mount point tail].
    seed('mountinfo', 'structured', b'\x00\x01' + bytes([20, 0, 0]) + bytes([21, 3, 6]) + b'shared' +
         bytes([22, 2, 3]) + b'a b' + bytes([23, 4, 1]) + b'2' + bytes([24, 6, 4]) + b'x\ny\\')

    # A real getdents64 buffer of a directory with awkward names.
    listing = os.path.join(tmp, 'listing')
    os.makedirs(listing)
    for n in ['a', 'b c', 'line\nbreak', '.hidden', 'x' * 255, '\u00e9t\u00e9', '..a', '.trash-b1-0123456789abcdef']:
        open(os.path.join(listing, n), 'w').close()
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(listing, os.O_RDONLY | os.O_DIRECTORY)
    buf = ctypes.create_string_buffer(16384)
    n = libc.syscall(217, fd, buf, len(buf))  # SYS_getdents64 on x86_64
    os.close(fd)
    assert n > 0, ctypes.get_errno()
    seed('dirents', 'raw-kernel', b'\x00' + buf.raw[:n])
    seed('dirents', 'raw-truncated', b'\x00' + buf.raw[:n - 3])
    seed('dirents', 'built', b'\x01' + b''.join(bytes([len(x)]) + x for x in [b'.', b'..', b'b1', b'x' * 200, b'a\0b']))
    seed('dirents', 'created', b'\x02' + b''.join(bytes([len(x)]) + x for x in [b'b1', b'.trash-b1', b'b c', b'\xff\xfe']))


def name_seeds():
    for name, data in [('join', b'/home/.boxlite\0boxes'), ('join-trailing', b'/h/\0b1'),
                       ('join-absolute', b'/h\0/etc'), ('join-empty', b'\0x'),
                       ('id', b'AbC_-09'), ('id-128', b'a' * 128), ('id-129', b'a' * 129),
                       ('partial-copy', b'.boxlite-shim.blx-0123456789abcdef'),
                       ('partial-copy-upper', b'.boxlite-shim.blx-0123456789ABCDEF'),
                       ('partial-copy-no-name', b'..blx-0123456789abcdef'),
                       ('lock-id', b'4294967295'), ('lock-id-over', b'4294967296'),
                       ('lock-id-zero', b'0'), ('lock-id-leading-zero', b'007'), ('lock-id-space', b' 1')]:
        seed('names', name, data)


def main():
    for d in os.listdir(CORPUS) if os.path.isdir(CORPUS) else []:
        for f in os.listdir(os.path.join(CORPUS, d)):
            if not f.startswith('finding-'):
                os.unlink(os.path.join(CORPUS, d, f))
    tmp = tempfile.mkdtemp(prefix='blx-fuzz-corpus-')
    try:
        qcow2_seeds(tmp)
        record_seeds()
        kernel_seeds(tmp)
        name_seeds()
    finally:
        shutil.rmtree(tmp)


if __name__ == '__main__':
    main()
