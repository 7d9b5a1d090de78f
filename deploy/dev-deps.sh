#!/usr/bin/env bash
# deploy/dev-deps.sh — the Debian packages the test suite needs; `make test` runs it first.
#
#   deploy/dev-deps.sh           install the missing ones (as root), else name them, exit 1
#   deploy/dev-deps.sh --check   only say which are missing (exit 1), never install
#   deploy/dev-deps.sh --list    print the package names, one line
#
# Silent and quick (one dpkg-query) when everything is there. The suite and `make demo`
# run PostgreSQL embedded, from the pgserver wheel; Debian's postgresql-15 is only for
# the failover test, which needs a primary and its streaming replica. `make demo` needs
# none of these.
set -euo pipefail

# The one list, and who needs each package:
#   - python3-venv: `make`'s .venv and install.sh's venv with Debian's own python3
#     (ensurepip; tests/deploy/test_install.py)
#   - prometheus: promtool checks scrapes and rules (tests/exporters/test_metrics.py,
#     test_dashboards.py, test_prometheus_rules.py; tests/test_daemon.py); the server
#     scrapes a fresh daemon for every dashboard query (tests/exporters/test_fresh_install.py)
#   - prometheus-alertmanager: a real Alertmanager receives the alert channel's alerts
#     (tests/notify/test_alertmanager.py)
#   - shellcheck: deploy/install.sh and this script stay clean (tests/deploy/test_install.py,
#     test_packaging.py)
#   - openssl: self-signed certificates for the TLS tests (tests/exporters/test_metrics.py,
#     tests/notify/test_smtp.py)
#   - systemd: systemd-analyze verifies the unit (tests/deploy/test_systemd.py,
#     test_install.py)
#   - postgresql-15: initdb, pg_basebackup, pg_ctl promote for a primary and its physical
#     streaming replica (tests/faults/test_failover.py)
#   - fonts-noto-cjk: the Chinese font of `jiancha report`'s PDF and charts
#     (tests/report/test_documents.py)
#   - poppler-utils: pdftoppm and pdftotext read the report's PDF back
#     (tests/report/test_documents.py)
#   - libpangoft2-1.0-0, libharfbuzz-subset0: WeasyPrint lays out the PDF with Pango and
#     subsets the CJK font with HarfBuzz (without it fontTools takes ~30 s a PDF)
#   - chromium, chromium-driver: the console in a real headless browser, with Chinese glyphs
#     in its screenshots (tests/web/test_browser.py)
#   - slapd, ldap-utils: a real OpenLDAP server (slapd, slapadd) for the console's directory
#     sign-in, ldapwhoami to know it is up (tests/web/ldapkit.py, test_ldap.py, test_browser.py)
PACKAGES=(python3-venv prometheus prometheus-alertmanager shellcheck openssl systemd
    postgresql-15 fonts-noto-cjk poppler-utils libpangoft2-1.0-0 libharfbuzz-subset0
    chromium chromium-driver slapd ldap-utils)

MODE=install
case ${1:-} in
'') ;;
--check) MODE=check ;;
--list) MODE=list ;;
-h | --help)
    sed -n '2,11s/^# \{0,1\}//p' "$0"
    exit 0
    ;;
*)
    printf '%s\n' "dev-deps.sh：未知的参数 / unknown argument: $1 (--check, --list, --help)" >&2
    exit 2
    ;;
esac
if (($# > 1)); then
    printf '%s\n' "dev-deps.sh：参数过多 / too many arguments: $*" >&2
    exit 2
fi

if [[ $MODE == list ]]; then
    printf '%s\n' "${PACKAGES[*]}"
    exit 0
fi

if ! command -v dpkg-query >/dev/null; then
    printf '%s\n' "dev-deps.sh：不是 Debian 系统，无法检查 / not Debian, cannot check:" \
        "    ${PACKAGES[*]} (the suite needs promtool, alertmanager, shellcheck, openssl," \
        "    systemd-analyze, Python's venv, PostgreSQL 15, a CJK font and poppler)" >&2
    exit 0
fi

# The packages dpkg does not have installed (unknown names included).
missing_packages() {
    local installed=" " name state
    while read -r name state; do
        [[ $state == installed ]] && installed+="$name "
    done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null || :)
    MISSING=()
    for name in "${PACKAGES[@]}"; do
        [[ $installed == *" $name "* ]] || MISSING+=("$name")
    done
}

missing_packages
((${#MISSING[@]})) || exit 0

if ((EUID != 0)); then
    how="sudo $0"
else
    how=$0
fi
if [[ $MODE == check || $EUID -ne 0 ]]; then
    printf '%s\n' "缺少 Debian 软件包 / missing Debian packages: ${MISSING[*]} — $how" >&2
    exit 1
fi

printf '%s\n' "安装 Debian 软件包 / installing Debian packages: ${MISSING[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${MISSING[@]}"
missing_packages
if ((${#MISSING[@]})); then
    printf '%s\n' "安装后仍缺少 / still missing after apt-get install: ${MISSING[*]}" >&2
    exit 1
fi
