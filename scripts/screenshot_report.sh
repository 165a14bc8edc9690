#!/usr/bin/env bash
# Screenshot a report.html with headless Chromium, page by page, to look at it as a user
# would (offline; nothing is fetched). Debian: apt-get install -y chromium
#
#   scripts/screenshot_report.sh RUN_DIR/report.html OUT_PREFIX [PAGES] [PAGE_HEIGHT]
#
# writes OUT_PREFIX_0.png ... OUT_PREFIX_{PAGES-1}.png, each 1400 x PAGE_HEIGHT pixels.
# Chromium's --screenshot only captures the top of a page, so each page frames the
# report in an iframe shifted up by one page height.
set -euo pipefail
report=$(realpath "$1"); prefix=$2; pages=${3:-4}; height=${4:-1600}
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$chromium" ] || { echo "chromium not found (apt-get install -y chromium)" >&2; exit 2; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for ((i = 0; i < pages; i++)); do
  frame="$work/page_$i.html"
  printf '<html><body style="margin:0;overflow:hidden"><iframe src="file://%s" style="position:absolute;top:-%dpx;left:0;width:1400px;height:%dpx;border:0"></iframe></body></html>' \
    "$report" $((i * height)) $(((pages + 1) * height)) > "$frame"
  timeout 90 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
    --user-data-dir="$work/profile" --screenshot="${prefix}_$i.png" --window-size=1400,"$height" \
    "file://$frame" >/dev/null 2>&1
  echo "${prefix}_$i.png"
done
