# Headless Chromium for the HTML report test (processors/validate/report):
# Debian's package, installed when /usr/bin/chromium is missing, with the
# downloaded .deb files kept under .cache/apt so a second run needs no network.
# Exports USAGESTREAM_CHROMIUM for the tests; they fail on CI without it.
if [ ! -x /usr/bin/chromium ]; then
  echo "   installing Debian's chromium (once; packages cached in .cache/apt)"
  sudo_cmd=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "chromium is missing and installing it needs root or sudo: apt-get install chromium" >&2; exit 1; }
    sudo_cmd="sudo"
  fi
  mkdir -p .cache/apt/archives/partial
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get -o Dir::Cache::Archives="$PWD/.cache/apt/archives" -qq update >/dev/null ||
    { echo "apt-get update failed: check the Debian mirror is reachable" >&2; exit 1; }
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get -o Dir::Cache::Archives="$PWD/.cache/apt/archives" \
    -qq -y --no-install-recommends install chromium >/dev/null ||
    { echo "apt-get install chromium failed: see the messages above; install it by hand and rerun" >&2; exit 1; }
fi
export USAGESTREAM_CHROMIUM=/usr/bin/chromium
echo "   $("$USAGESTREAM_CHROMIUM" --version 2>/dev/null || echo chromium)"
