# Shared by the scripts that build container images without a registry
# (scripts/k8s-images.sh, scripts/compose-images.sh); sourced. pack needs
# $work, a scratch directory of the caller's.

# layer DIR TAR: a layer of DIR's tree, owners by number, in a stable order.
layer() {
  tar -C "$1" --numeric-owner --sort=name --mtime=@0 --exclude=./proc/\* --exclude=./sys/\* \
    --exclude=./dev/\* -cf "$2" .
}

# pack REF ARCHIVE CONFIG LAYER...: writes a Docker archive of the image REF
# made of the layer tarballs LAYER... (bottom first), with CONFIG the image
# configuration's "config" object (entrypoint, environment, user...).
pack() {
  local ref=$1 archive=$2 config=$3
  shift 3
  local d=${work:?}/pack
  rm -rf "$d"
  mkdir -p "$d"
  local diffs="" layers="" history="" l sum
  for l in "$@"; do
    sum=$(sha256sum "$l" | cut -d' ' -f1)
    mkdir -p "$d/$sum"
    ln "$l" "$d/$sum/layer.tar" 2>/dev/null || cp "$l" "$d/$sum/layer.tar"
    diffs="$diffs${diffs:+,}\"sha256:$sum\""
    layers="$layers${layers:+,}\"$sum/layer.tar\""
    history="$history${history:+,}{\"created\":\"1970-01-01T00:00:00Z\",\"created_by\":\"$(basename "$l")\"}"
  done
  # One history entry per layer: image builders (buildah) that start FROM
  # such an image refuse a history that does not match the layers.
  printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]},"history":[%s]}' \
    "$config" "$diffs" "$history" >"$d/config.json"
  sum=$(sha256sum "$d/config.json" | cut -d' ' -f1)
  mv "$d/config.json" "$d/$sum.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":[%s]}]' "$sum" "$ref" "$layers" >"$d/manifest.json"
  tar -C "$d" -cf "$archive.tmp" .
  mv "$archive.tmp" "$archive"
}

# A minimal root: /etc/passwd and /etc/group with root and nobody, /tmp.
minimal_root() {
  local r=$1
  mkdir -p "$r/etc" "$r/tmp" "$r/usr/local/bin"
  chmod 1777 "$r/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
}

