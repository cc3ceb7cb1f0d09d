#!/bin/sh
# forge initramfs /init (written by forge, src/os/initramfs): mount the
# dm-verity /usr the kernel set up from dm-mod.create=, prepare a writable
# ROOT, then switch_root to busybox init from /usr.
#
# Every failure prints one `forge-initramfs: error:` line on the console and
# powers off, so `forge os boot-test` can tell why a boot failed.
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
  echo "forge-initramfs: error: $*"
  sleep 1
  poweroff -f
}

mkdir -p /proc /sys /dev /sysroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

usrhash=
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    usrhash=*) usrhash=${arg#usrhash=} ;;
  esac
done
[ -n "$usrhash" ] || fail "no usrhash= on the kernel command line"
# The verity table the kernel used must carry that root hash.
case " $(cat /proc/cmdline) " in
  *" sha256 $usrhash "*) ;;
  *) fail "the dm-mod.create= table does not carry usrhash=$usrhash" ;;
esac

# The kernel (CONFIG_DM_INIT) made the verity device `usr` before init.
usrdev=
for d in /sys/block/dm-*; do
  [ "$(cat "$d/dm/name" 2>/dev/null)" = usr ] && usrdev=/dev/${d##*/}
done
[ -n "$usrdev" ] || fail "no dm-verity device for /usr (dm-mod.create= missing or refused)"

# A partition by its GPT name (the kernel's uevent PARTNAME).
partition() {
  for u in /sys/class/block/*/uevent; do
    if grep -qx "PARTNAME=$1" "$u"; then
      d=${u%/uevent}
      echo "/dev/${d##*/}"
      return
    fi
  done
}

# ROOT: the empty ext4 forge wrote; a blank ROOT (wiped to reset the node)
# is made again with busybox mke2fs (ext2, mounted by the ext4 driver);
# tmpfs when there is no ROOT partition or it cannot be made.
rootdev=$(partition ROOT)
if [ -n "$rootdev" ] && ! blkid "$rootdev" | grep -q 'TYPE='; then
  echo "forge-initramfs: first boot: formatting ROOT ($rootdev)"
  mke2fs -L ROOT "$rootdev" >/dev/null 2>&1 || echo "forge-initramfs: mke2fs failed"
fi
if [ -z "$rootdev" ] || ! mount -t ext4 "$rootdev" /sysroot; then
  echo "forge-initramfs: ROOT not usable, using tmpfs"
  mount -t tmpfs -o mode=0755 root /sysroot
fi

mkdir -p /sysroot/usr
mount -t erofs -o ro "$usrdev" /sysroot/usr ||
  fail "cannot mount the verity /usr ($usrdev)"
[ -x /sysroot/usr/sbin/init ] || fail "/usr has no sbin/init"

cd /sysroot
for d in etc var run tmp proc sys dev oem; do mkdir -p "$d"; done
chmod 1777 tmp
for l in bin sbin lib lib64; do
  [ -e "usr/$l" ] && [ ! -e "$l" ] && ln -s "usr/$l" "$l"
done
# Factory defaults from /usr for what ROOT does not have yet, file by file
# (busybox `cp -n` skips a whole folder that exists).
copy_missing() {
  (cd "$1" && find . -type d) | while read -r x; do mkdir -p "$2/$x"; done
  (cd "$1" && find . ! -type d) | while read -r x; do
    [ -e "$2/$x" ] || [ -L "$2/$x" ] || cp -a "$1/$x" "$2/$x"
  done
}
for d in etc var; do
  [ -d "usr/share/factory/$d" ] && copy_missing "usr/share/factory/$d" "$d"
done
oemdev=$(partition OEM)
[ -n "$oemdev" ] && mount -t vfat -o ro "$oemdev" /sysroot/oem

mount --move /dev /sysroot/dev
mount --move /proc /sysroot/proc
mount --move /sys /sysroot/sys
exec switch_root /sysroot /sbin/init
