#!/usr/bin/env bash
# mkimage.sh — an image tarball made without a Docker daemon, from one static binary.
#
#   mkimage.sh [--format docker|oci|both] BINARY NAME:TAG PORT OUT.tar
#
# docker (the default) is what `docker save` writes and what `tabbify push` uploads as a
# docker app's artifact (build.archive): one layer directory with layer.tar (holding
# /BINARY's basename at the root, mode 0755), the image config <sha256>.json (Cmd,
# Env, ExposedPorts, rootfs.diff_ids), manifest.json and repositories. oci writes an OCI
# image layout (oci-layout, index.json, blobs/sha256/...); both writes the two side by
# side in one tarball, the way Docker 25 and later `docker save` do, with manifest.json
# pointing at the OCI blobs. Everything is reproducible: sorted names, owner 0, mtime 0.
# sha256sum computes digests, jq writes the JSON.
set -euo pipefail

format=docker
if [[ "${1:-}" == --format ]]; then
  format=$2
  shift 2
fi
[[ $# -eq 4 ]] || { echo "usage: mkimage.sh [--format docker|oci|both] BINARY NAME:TAG PORT OUT.tar" >&2; exit 2; }
bin=$1 ref=$2 port=$3 out=$4
case $format in docker | oci | both) ;; *) echo "mkimage.sh: unknown format $format" >&2; exit 2 ;; esac
repo=${ref%:*} tag=${ref##*:}
exe=$(basename "$bin")

w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
tarx() { tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=gnu "$@"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$w/rootfs" "$w/img"
install -m 0755 "$bin" "$w/rootfs/$exe"
tarx -C "$w/rootfs" -cf "$w/layer.tar" "$exe"
layer=$(sha "$w/layer.tar")
created=1970-01-01T00:00:00Z

jq -cn --arg exe "/$exe" --arg port "$port" --arg layer "sha256:$layer" --arg created "$created" '{
  architecture: "amd64", os: "linux", created: $created,
  config: {Cmd: [$exe], Env: ["PATH=/", ("PORT=" + $port)],
           ExposedPorts: {($port + "/tcp"): {}}, WorkingDir: "/"},
  rootfs: {type: "layers", diff_ids: [$layer]},
  history: [{created: $created, created_by: "tests/docker/image/mkimage.sh"}]
}' >"$w/config.json"
config=$(sha "$w/config.json")

if [[ $format == docker ]]; then
  # The layer directory's name is arbitrary for `docker load` (manifest.json names the
  # paths); docker save uses the v1 layer id, we use the layer digest.
  mkdir -p "$w/img/$layer"
  cp "$w/layer.tar" "$w/img/$layer/layer.tar"
  echo 1.0 >"$w/img/$layer/VERSION"
  jq -cn --arg id "$layer" --arg created "$created" \
    '{id: $id, created: $created, os: "linux", architecture: "amd64"}' >"$w/img/$layer/json"
  cp "$w/config.json" "$w/img/$config.json"
  jq -cn --arg c "$config.json" --arg r "$ref" --arg l "$layer/layer.tar" \
    '[{Config: $c, RepoTags: [$r], Layers: [$l]}]' >"$w/img/manifest.json"
  jq -cn --arg repo "$repo" --arg tag "$tag" --arg id "$layer" '{($repo): {($tag): $id}}' >"$w/img/repositories"
else
  b=$w/img/blobs/sha256
  mkdir -p "$b"
  cp "$w/layer.tar" "$b/$layer"
  cp "$w/config.json" "$b/$config"
  jq -cn --arg c "sha256:$config" --argjson cs "$(stat -c %s "$w/config.json")" \
    --arg l "sha256:$layer" --argjson ls "$(stat -c %s "$w/layer.tar")" '{
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $c, size: $cs},
    layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $l, size: $ls}]
  }' >"$w/manifest.json"
  manifest=$(sha "$w/manifest.json")
  cp "$w/manifest.json" "$b/$manifest"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$w/img/oci-layout"
  jq -cn --arg m "sha256:$manifest" --argjson ms "$(stat -c %s "$w/manifest.json")" --arg r "$ref" --arg t "$tag" '{
    schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $m, size: $ms,
                 annotations: {"io.containerd.image.name": $r, "org.opencontainers.image.ref.name": $t}}]
  }' >"$w/img/index.json"
  if [[ $format == both ]]; then
    jq -cn --arg c "blobs/sha256/$config" --arg r "$ref" --arg l "blobs/sha256/$layer" \
      '[{Config: $c, RepoTags: [$r], Layers: [$l]}]' >"$w/img/manifest.json"
    jq -cn --arg repo "$repo" --arg tag "$tag" --arg id "$layer" '{($repo): {($tag): $id}}' >"$w/img/repositories"
  fi
fi
mapfile -t top < <(cd "$w/img" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | sort)
tarx -C "$w/img" -cf "$w/out.tar" "${top[@]}"
mv "$w/out.tar" "$out"
