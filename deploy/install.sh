#!/usr/bin/env bash
# deploy/install.sh — install, upgrade or remove jiancha as a systemd service.
# `deploy/install.sh --help` explains everything (Chinese; `--lang en` for English).
set -euo pipefail
umask 022 # the venv and the unit must be readable by the service user whatever root's umask

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPT_DIR")
# This checkout's copies; an install uses those of the package it installed instead (the
# wheel carries them as monitor/_deploy/...), so they match the version installed --from.
UNIT_TEMPLATE=$SCRIPT_DIR/systemd/jiancha.service
CONFIG_TEMPLATE=$SCRIPT_DIR/jiancha.example.toml
UNIT_NAME=jiancha.service
STATE_FILE_NAME=install.state # in the prefix: what this script created (read by --uninstall)

PREFIX=/opt/jiancha
ETC=/etc/jiancha
UNIT_DIR=/etc/systemd/system
FROM=$REPO_DIR
PYTHON=python3
SVC_USER=jiancha
PIP_ARGS=()
ACTION=install
PURGE=0
ENABLE=0
USE_SYSTEMCTL=1
MANAGE_USER=1
VERBOSE=0

case ${JIANCHA_LANG:-zh} in
en*) UI=en ;;
*) UI=zh ;;
esac

# --- messages ---------------------------------------------------------------------------

# say ZH EN: one line in the interface language.
say() {
    if [[ $UI == en ]]; then printf '%s\n' "$2"; else printf '%s\n' "$1"; fi
}

# act TAG ZH EN: one line saying what was done. TAG: created updated installed kept
# skipped removed repaired.
act() {
    local zh
    case $1 in
    created) zh=创建 ;;
    updated) zh=更新 ;;
    installed) zh=安装 ;;
    kept) zh=保留 ;;
    skipped) zh=跳过 ;;
    removed) zh=删除 ;;
    repaired) zh=修复 ;;
    *) zh=$1 ;;
    esac
    say "[$zh] $2" "[$1] $3"
}

warn() { say "警告：$1" "warning: $2" >&2; }

# die ZH EN: refuse, exit 1. usage_error ZH EN: bad command line, exit 2.
die() {
    say "jiancha install.sh：$1" "jiancha install.sh: $2" >&2
    exit 1
}
usage_error() {
    say "jiancha install.sh：$1（见 --help）" "jiancha install.sh: $2 (see --help)" >&2
    exit 2
}

usage() {
    if [[ $UI == en ]]; then
        cat <<'EOF'
Usage: deploy/install.sh [OPTION]...
       deploy/install.sh --uninstall [--purge] [OPTION]...

Installs jiancha (the electronic-supervision daemon) as a systemd service, or
upgrades it in place when it is already installed. Run it as root. It:

  1. creates the system user and group `jiancha` (skipped when they exist);
  2. creates or upgrades the venv PREFIX/venv (default /opt/jiancha/venv) and installs
     jiancha into it from this checkout (or --from a checkout or wheel); dependencies
     come from PyPI or pip's configured index (--pip-args for a wheelhouse);
  3. creates the configuration skeleton in ETC (default /etc/jiancha), never
     overwriting an existing file:
       jiancha.toml   copy of deploy/jiancha.example.toml   0640 root:jiancha
       jiancha.env    commented JIANCHA_SOURCE_DSN / JIANCHA_DSN lines     0640 root:jiancha
       secrets/       secret files: read by the service (0640 root:jiancha)
                      or handed over as systemd credentials (LoadCredential=)
  4. installs deploy/systemd/jiancha.service into UNIT_DIR (default
     /etc/systemd/system) with its paths pointing at PREFIX and ETC, and runs
     `systemctl daemon-reload` when systemd is running (PID 1). It never starts the
     service unless --enable is given.
The unit and the example configuration are those of the jiancha installed (a wheel
carries them), so --from a wheel needs no checkout of the same version.

Running it again is safe: the configuration is left alone, the venv is upgraded in
place, the unit is rewritten only when it changed. Local changes to the unit belong
in a drop-in (`systemctl edit jiancha`), which survives reinstalls.

After an upgrade: `jiancha db migrate`, then `systemctl restart jiancha`.

Options:
  --prefix DIR        where the venv goes (default /opt/jiancha)
  --etc DIR           configuration directory (default /etc/jiancha)
  --unit-dir DIR      where the unit file goes (default /etc/systemd/system)
  --from PATH         a jiancha checkout (a folder with pyproject.toml) or a wheel
                      (jiancha-*.whl) to install (default: this script's repository)
  --python PYTHON     Python >= 3.11 that creates the venv (default python3; used only
                      when the venv does not exist yet)
  --pip-args ARGS     extra arguments for pip install (split at spaces), e.g.
                      --pip-args "--no-index --find-links /srv/wheels" (offline hosts)
  --user NAME         the service user and group (default jiancha)
  --no-user           do not create (or, with --uninstall, remove) the user: systemd
                      then runs the service as a dynamic user, and secrets must be passed
                      as credentials (LoadCredential=)
  --no-systemctl      never call systemctl (no daemon-reload, no enable/stop)
  --enable            also `systemctl enable --now jiancha` (needs a running systemd)
  --uninstall         stop and disable the service, remove the unit, the venv and the
                      user this script created; keep ETC (operator data) and drop-ins
  --purge             with --uninstall: remove ETC and the unit's drop-ins too
  --print-unit        print the unit as it would be installed with these options; change
                      nothing
  --lang zh|en        language of the messages (default zh, or $JIANCHA_LANG)
  -v, --verbose       show pip's output
  -h, --help          this help

Without root it refuses unless every path is writable by you and --no-user
--no-systemctl are given (e.g. a trial install under your home directory).

Examples:
  sudo deploy/install.sh                           # install or upgrade
  sudo deploy/install.sh --enable                  # ... and start it now and at boot
  sudo deploy/install.sh --from dist/jiancha-0.1.0-py3-none-any.whl
  sudo deploy/install.sh --uninstall               # keeps /etc/jiancha
  sudo deploy/install.sh --uninstall --purge       # removes it too
  deploy/install.sh --prefix ~/jc --etc ~/jc/etc --unit-dir ~/jc/units --no-user --no-systemctl

Exit status: 0 done, 1 refused or failed, 2 bad usage.
EOF
    else
        cat <<'EOF'
用法：deploy/install.sh [选项]...
      deploy/install.sh --uninstall [--purge] [选项]...

把 jiancha（电子监察守护进程）安装为 systemd 服务；已安装时原地升级。请以 root 运行。
它依次：

  1. 建立系统用户与用户组 jiancha（已存在则跳过）；
  2. 建立或升级虚拟环境 PREFIX/venv（默认 /opt/jiancha/venv），从本仓库（或 --from
     指定的源码目录、wheel）安装 jiancha；依赖来自 PyPI 或 pip 配置的索引
     （离线主机用 --pip-args 指向 wheel 目录）；
  3. 在 ETC（默认 /etc/jiancha）建立配置骨架，绝不覆盖已有文件：
       jiancha.toml   复制自 deploy/jiancha.example.toml             0640 root:jiancha
       jiancha.env    注释掉的 JIANCHA_SOURCE_DSN / JIANCHA_DSN 行   0640 root:jiancha
       secrets/       密钥文件：由服务直接读取（0640 root:jiancha），
                      或作为 systemd 凭据传入（LoadCredential=）
  4. 把 deploy/systemd/jiancha.service 安装到 UNIT_DIR（默认 /etc/systemd/system），
     其中路径指向 PREFIX 与 ETC；systemd 正在运行（PID 1）时执行
     systemctl daemon-reload。除非给出 --enable，绝不启动服务。
单元文件与示例配置取自所安装的 jiancha（wheel 中带有），因此 --from wheel 时无需
同一版本的源码目录。

可重复执行：配置不动，虚拟环境原地升级，单元文件只在内容变化时重写。对单元的本地
修改请写在 drop-in 中（systemctl edit jiancha），重装不会覆盖。

升级之后：jiancha db migrate，然后 systemctl restart jiancha。

选项：
  --prefix DIR        虚拟环境所在目录（默认 /opt/jiancha）
  --etc DIR           配置目录（默认 /etc/jiancha）
  --unit-dir DIR      单元文件目录（默认 /etc/systemd/system）
  --from PATH         要安装的 jiancha 源码目录（含 pyproject.toml）或 wheel
                      （jiancha-*.whl）；默认为本脚本所在仓库
  --python PYTHON     用来建立虚拟环境的 Python（≥ 3.11，默认 python3；仅在虚拟环境
                      尚不存在时使用）
  --pip-args ARGS     传给 pip install 的附加参数（按空格拆分），例如
                      --pip-args "--no-index --find-links /srv/wheels"（离线主机）
  --user NAME         服务用户及用户组名（默认 jiancha）
  --no-user           不建立（配合 --uninstall 时不删除）用户：systemd 以动态用户运行
                      服务，密钥须以凭据传入（LoadCredential=）
  --no-systemctl      不调用 systemctl（不 daemon-reload、不 enable、不 stop）
  --enable            同时执行 systemctl enable --now jiancha（需要正在运行的 systemd）
  --uninstall         停止并禁用服务，删除单元文件、虚拟环境及本脚本建立的用户；
                      保留 ETC（运维数据）与 drop-in
  --purge             与 --uninstall 同用：连 ETC 与单元的 drop-in 一并删除
  --print-unit        按当前选项输出将要安装的单元文件，不做任何改动
  --lang zh|en        提示语言（默认 zh，或取 $JIANCHA_LANG）
  -v, --verbose       显示 pip 的输出
  -h, --help          显示本帮助

非 root 运行时，除非所有路径都可由你写入且给出 --no-user --no-systemctl（例如在
自己的主目录下试装），否则拒绝执行。

示例：
  sudo deploy/install.sh                           # 安装或升级
  sudo deploy/install.sh --enable                  # 同时立即启动并设为开机启动
  sudo deploy/install.sh --from dist/jiancha-0.1.0-py3-none-any.whl
  sudo deploy/install.sh --uninstall               # 保留 /etc/jiancha
  sudo deploy/install.sh --uninstall --purge       # 连同 /etc/jiancha 一并删除
  deploy/install.sh --prefix ~/jc --etc ~/jc/etc --unit-dir ~/jc/units --no-user --no-systemctl

退出码：0 完成，1 拒绝或失败，2 用法错误。
EOF
    fi
}

# --- command line -----------------------------------------------------------------------

args=("$@") # the language first, so that every message below is in it
for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
    --lang=zh | --lang=en) UI=${args[i]#--lang=} ;;
    --lang) if [[ ${args[i + 1]:-} == zh || ${args[i + 1]:-} == en ]]; then UI=${args[i + 1]}; fi ;;
    esac
done

while (($#)); do
    opt=$1
    if [[ $opt == --*=* ]]; then # --opt=value is --opt value
        shift
        set -- "${opt%%=*}" "${opt#*=}" "$@"
        opt=$1
    fi
    case $opt in
    --prefix | --etc | --unit-dir | --from | --python | --pip-args | --user | --lang)
        (($# >= 2)) || usage_error "选项 $opt 需要一个值" "option $opt needs a value"
        case $opt in
        --prefix) PREFIX=$2 ;;
        --etc) ETC=$2 ;;
        --unit-dir) UNIT_DIR=$2 ;;
        --from) FROM=$2 ;;
        --python) PYTHON=$2 ;;
        --pip-args)
            read -r -a words <<<"$2"
            PIP_ARGS+=("${words[@]}")
            ;;
        --user) SVC_USER=$2 ;;
        --lang)
            [[ $2 == zh || $2 == en ]] || usage_error "--lang 只能是 zh 或 en" "--lang is zh or en"
            UI=$2
            ;;
        esac
        shift 2
        ;;
    --enable) ENABLE=1 && shift ;;
    --uninstall) ACTION=uninstall && shift ;;
    --print-unit) ACTION=print-unit && shift ;;
    --purge) PURGE=1 && shift ;;
    --no-systemctl) USE_SYSTEMCTL=0 && shift ;;
    --no-user) MANAGE_USER=0 && shift ;;
    -v | --verbose) VERBOSE=1 && shift ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) usage_error "未知的参数：$opt" "unknown argument: $opt" ;;
    esac
done

((PURGE == 0)) || [[ $ACTION == uninstall ]] ||
    usage_error "--purge 只能与 --uninstall 同用" "--purge goes with --uninstall"
((ENABLE == 0)) || [[ $ACTION == install ]] ||
    usage_error "--enable 不能与 --uninstall 同用" "--enable does not go with --uninstall"
((ENABLE == 0 || USE_SYSTEMCTL == 1)) ||
    usage_error "--enable 与 --no-systemctl 互相矛盾" "--enable contradicts --no-systemctl"
[[ $SVC_USER =~ ^[a-z_][a-z0-9_-]{0,30}$ ]] ||
    usage_error "用户名不合法：$SVC_USER" "not a valid user name: $SVC_USER"

# Paths go into the unit file: absolute, no spaces, quotes, backslashes or systemd's %.
normalise() {
    local name=$1 value=$2 path
    [[ -n $value ]] || usage_error "$name 不能为空" "$name must not be empty"
    path=$(realpath -m -- "$value")
    [[ $path =~ [[:space:]\"\'\\%\$] ]] &&
        usage_error "$name 含有空白、引号、反斜杠、% 或 \$：$path" \
            "$name contains whitespace, a quote, a backslash, % or \$: $path"
    case $path in
    / | /bin | /boot | /dev | /etc | /home | /lib | /lib64 | /opt | /proc | /root | /run | /sbin | /srv | /sys | /tmp | /usr | /usr/local | /var)
        usage_error "$name 不能是系统目录 $path，请用 jiancha 专用的目录" \
            "$name cannot be the system directory $path; give jiancha a directory of its own"
        ;;
    esac
    printf '%s\n' "$path"
}
PREFIX=$(normalise --prefix "$PREFIX")
ETC=$(normalise --etc "$ETC")
UNIT_DIR=$(realpath -m -- "$UNIT_DIR")
[[ $PREFIX != "$ETC" ]] || usage_error "--prefix 与 --etc 不能相同" "--prefix and --etc must differ"
VENV=$PREFIX/venv
STATE_FILE=$PREFIX/$STATE_FILE_NAME
UNIT_FILE=$UNIT_DIR/$UNIT_NAME

# --- what this host is ------------------------------------------------------------------

IS_ROOT=0
((EUID == 0)) && IS_ROOT=1

# systemd is running when it is PID 1 (sd_booted(3): /run/systemd/system exists).
systemd_running() {
    [[ -d /run/systemd/system ]] && [[ $(cat /proc/1/comm 2>/dev/null) == systemd ]]
}
SYSTEMCTL=0
if ((USE_SYSTEMCTL)) && systemd_running && command -v systemctl >/dev/null; then
    SYSTEMCTL=1
fi
((ENABLE == 0 || SYSTEMCTL == 1)) ||
    die "--enable 需要正在运行的 systemd（PID 1 不是 systemd），未做任何改动" \
        "--enable needs a running systemd (PID 1 is not systemd); nothing was changed"

# writable PATH: the path, or its nearest existing ancestor, is writable by us.
writable() {
    local p=$1
    while [[ ! -e $p ]]; do p=$(dirname "$p"); done
    [[ -w $p ]]
}

if ((!IS_ROOT)) && [[ $ACTION != print-unit ]]; then
    reasons=()
    for p in "$PREFIX" "$ETC" "$UNIT_DIR"; do
        writable "$p" || reasons+=("$p")
    done
    if ((MANAGE_USER)); then
        if [[ $UI == en ]]; then reasons+=("user $SVC_USER"); else reasons+=("用户 $SVC_USER"); fi
    fi
    ((SYSTEMCTL == 0)) || reasons+=("systemctl")
    if ((${#reasons[@]})); then
        zh_list=${reasons[0]} en_list=${reasons[0]}
        for r in "${reasons[@]:1}"; do zh_list+=、$r en_list+=", $r"; done
        die "需要 root 权限（涉及：$zh_list）。请用 sudo 运行；或用 --prefix、--etc、--unit-dir 指向自己可写的目录，并加 --no-user --no-systemctl。未做任何改动。" \
            "needs root (touches: $en_list). Run it with sudo, or point --prefix, --etc and --unit-dir at directories you can write and add --no-user --no-systemctl. Nothing was changed."
    fi
fi

TMP_FILES=()
cleanup() { ((${#TMP_FILES[@]} == 0)) || rm -f -- "${TMP_FILES[@]}"; }
trap cleanup EXIT

# --- helpers ----------------------------------------------------------------------------

GROUP= # the group that may read the configuration; empty: root only (a dynamic user)

# own PATH MODE: mode, and root:GROUP when we are root.
own() {
    chmod "$2" "$1"
    if ((IS_ROOT)); then chown "root:${GROUP:-root}" "$1"; fi
}

# A file whose group no longer exists (after --uninstall removed the user) gets the
# group again; nothing else about an existing file is touched.
repair_group() {
    if ((IS_ROOT)) && [[ -n $GROUP && -e $1 && $(stat -c %G "$1") == UNKNOWN ]]; then
        chgrp "$GROUP" "$1"
        act repaired "$1 的属组 → $GROUP（原属组已不存在）" \
            "group of $1 -> $GROUP (its group no longer existed)"
    fi
}

systemctl_quiet() { systemctl "$@" >/dev/null 2>&1; }

# --- install ----------------------------------------------------------------------------

check_source() {
    if [[ -d $FROM ]]; then
        FROM=$(realpath -- "$FROM")
        grep -q '^name = "jiancha"' "$FROM/pyproject.toml" 2>/dev/null ||
            die "$FROM 不是 jiancha 的源码目录（没有 name = \"jiancha\" 的 pyproject.toml）" \
                "$FROM is not a jiancha checkout (no pyproject.toml with name = \"jiancha\")"
    elif [[ -f $FROM && $(basename -- "$FROM") == jiancha-*.whl ]]; then
        FROM=$(realpath -- "$FROM")
    else
        die "--from 应为 jiancha 源码目录或 jiancha-*.whl：$FROM" \
            "--from must be a jiancha checkout or a jiancha-*.whl: $FROM"
    fi
}

ensure_user() {
    CREATED_USER=no
    if [[ -f $STATE_FILE ]] && grep -qx "created_user=$SVC_USER" "$STATE_FILE"; then
        CREATED_USER=yes # an earlier run created it: --uninstall may remove it
    fi
    if ((!IS_ROOT)); then
        GROUP=$(id -gn)
        return
    fi
    if ((MANAGE_USER)); then
        if getent passwd "$SVC_USER" >/dev/null; then
            act kept "用户 $SVC_USER（已存在）" "user $SVC_USER (exists)"
        else
            command -v useradd >/dev/null ||
                die "没有 useradd，无法建立用户 $SVC_USER；可先自行建立，或加 --no-user" \
                    "no useradd to create user $SVC_USER; create it yourself or add --no-user"
            local shell=/usr/sbin/nologin group_opt=(--user-group)
            [[ -x $shell ]] || shell=/sbin/nologin
            [[ -x $shell ]] || shell=/bin/false
            if getent group "$SVC_USER" >/dev/null; then group_opt=(--gid "$SVC_USER"); fi
            useradd --system "${group_opt[@]}" --no-create-home --home-dir /var/lib/jiancha \
                --shell "$shell" --comment "jiancha electronic supervision daemon" "$SVC_USER"
            CREATED_USER=yes
            act created "系统用户及用户组 $SVC_USER" "system user and group $SVC_USER"
        fi
    elif getent passwd "$SVC_USER" >/dev/null; then
        act kept "用户 $SVC_USER（已存在；--no-user：不由本脚本管理）" \
            "user $SVC_USER (exists; --no-user: not managed by this script)"
    else
        act skipped "服务用户（--no-user）：systemd 以动态用户运行服务，密钥请用 LoadCredential= 传入" \
            "service user (--no-user): systemd runs the service as a dynamic user; pass secrets with LoadCredential="
    fi
    if getent group "$SVC_USER" >/dev/null; then GROUP=$SVC_USER; fi
}

ensure_venv() {
    local created=0
    [[ -d $PREFIX ]] || install -d -m 0755 "$PREFIX"
    if [[ -x $VENV/bin/python ]] &&
        "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        :
    else
        command -v "$PYTHON" >/dev/null ||
            die "找不到 Python：$PYTHON（用 --python 指定）" "no such Python: $PYTHON (use --python)"
        "$PYTHON" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
            die "$PYTHON 不是带 venv 与 ensurepip 的 Python ≥ 3.11（Debian：apt-get install python3-venv）" \
                "$PYTHON is not a Python >= 3.11 with venv and ensurepip (Debian: apt-get install python3-venv)"
        local clear=()
        [[ ! -e $VENV ]] || clear=(--clear) # there but broken (its Python is gone)
        "$PYTHON" -m venv "${clear[@]}" "$VENV"
        created=1
    fi
    local log
    log=$(mktemp)
    TMP_FILES+=("$log")
    run_pip() {
        if ((VERBOSE)); then
            "$VENV/bin/python" -m pip "$@" 2>&1 | tee -a "$log"
        else
            "$VENV/bin/python" -m pip "$@" >>"$log" 2>&1
        fi
    }
    # Dependencies only as needed; jiancha itself is always (re)installed from FROM
    # (pip skips a wheel of the version already installed, hence the second call).
    if ! run_pip install --disable-pip-version-check --upgrade "${PIP_ARGS[@]}" "$FROM" ||
        { [[ $FROM == *.whl ]] && ! run_pip install --disable-pip-version-check \
            --force-reinstall --no-deps "${PIP_ARGS[@]}" "$FROM"; }; then
        ((VERBOSE)) || tail -n 30 "$log" >&2
        die "pip 安装 jiancha 失败（见上方输出）；排除原因后再次运行即可" \
            "pip failed to install jiancha (see above); fix the cause and run it again"
    fi
    local version
    version=$("$VENV/bin/jiancha" --version 2>&1) ||
        die "安装后无法运行 $VENV/bin/jiancha：$version" "$VENV/bin/jiancha does not run: $version"
    if ((created)); then
        act created "虚拟环境 $VENV" "venv $VENV"
    else
        act updated "虚拟环境 $VENV（原地升级）" "venv $VENV (upgraded in place)"
    fi
    act installed "$version ← $FROM" "$version <- $FROM"
    installed_templates
    if [[ -f $REPO_DIR/README.md ]]; then # the unit's Documentation=
        if cmp -s "$REPO_DIR/README.md" "$PREFIX/README.md"; then
            :
        else
            install -m 0644 "$REPO_DIR/README.md" "$PREFIX/README.md"
        fi
    fi
}

# The unit and the example configuration of the package just installed (monitor.paths, in
# the venv's Python: -I so that a jiancha in the current directory cannot answer instead);
# this checkout's copies only when that package predates them.
installed_templates() {
    local found unit config
    if found=$("$VENV/bin/python" -I -c \
        'from monitor import paths; print(paths.systemd_unit()); print(paths.example_config())' \
        2>/dev/null); then
        unit=${found%%$'\n'*} config=${found#*$'\n'}
        if [[ -f $unit && -f $config ]]; then
            UNIT_TEMPLATE=$unit CONFIG_TEMPLATE=$config
            return
        fi
    fi
    [[ -f $UNIT_TEMPLATE && -f $CONFIG_TEMPLATE ]] ||
        die "安装的 jiancha 不带单元文件与示例配置，$UNIT_TEMPLATE 也不存在：请用较新的 wheel，或在 jiancha 仓库的 deploy/ 中运行本脚本" \
            "the jiancha installed carries no unit and example configuration, and $UNIT_TEMPLATE is missing: use a newer wheel, or run this script from a jiancha repository's deploy/"
}

write_state() {
    local tmp
    tmp=$(mktemp)
    TMP_FILES+=("$tmp")
    {
        echo "# written by deploy/install.sh; --uninstall reads it"
        echo "etc=$ETC"
        echo "unit=$UNIT_FILE"
        [[ $CREATED_USER == no ]] || echo "created_user=$SVC_USER"
    } >"$tmp"
    cmp -s "$tmp" "$STATE_FILE" || install -m 0644 "$tmp" "$STATE_FILE"
}

env_template() {
    cat <<EOF
# jiancha.env — jiancha 服务的环境变量 / environment of the jiancha service.
# systemd 以 root 读取（EnvironmentFile=）/ read by systemd (EnvironmentFile=).
# 保持 0640 / keep it 0640. 行内不展开变量 / no variable expansion: KEY=value lines only.

# 审批数据库（只读角色 jiancha_reader）/ approval database (read-only role jiancha_reader):
#JIANCHA_SOURCE_DSN=postgresql://jiancha:PASSWORD@db.example.gov.cn:5432/approval

# jiancha 模式所在数据库，缺省同上 / database of schema jiancha (default: the one above):
#JIANCHA_DSN=postgresql://jiancha:PASSWORD@db.example.gov.cn:5432/approval

# 本地日历目录 / local calendar files:
#JIANCHA_CALENDAR_PATH=$ETC/calendars

# 覆盖 jiancha.toml 中的键 / override a key of jiancha.toml: JIANCHA__SECTION__KEY=value
#JIANCHA__NOTIFY__LANGUAGE=en
EOF
}

ensure_config() {
    local dir_mode=0750 toml_mode=0640 secrets_mode=0750
    if [[ $(etc_mode) == 755 ]]; then
        # dynamic user: no group to share with. jiancha.toml holds no secrets (they are
        # files named in it), so it is world-readable; secrets/ is root's, for LoadCredential=.
        dir_mode=0755 toml_mode=0644 secrets_mode=0700
    fi
    local who
    if ((IS_ROOT)); then who=root:${GROUP:-root}; else who=$(id -un):$(id -gn); fi

    if [[ -d $ETC ]]; then
        act kept "$ETC" "$ETC"
        repair_group "$ETC"
    else
        install -d "$ETC"
        own "$ETC" "$dir_mode"
        act created "$ETC（$dir_mode $who）" "$ETC ($dir_mode $who)"
    fi

    local toml=$ETC/jiancha.toml
    if [[ -e $toml ]]; then
        act kept "$toml（已存在，未改动）" "$toml (exists, left as it is)"
        repair_group "$toml"
    else
        cp -- "$CONFIG_TEMPLATE" "$toml"
        own "$toml" "$toml_mode"
        act created "$toml（复制自 deploy/jiancha.example.toml，$toml_mode $who）" \
            "$toml (copy of deploy/jiancha.example.toml, $toml_mode $who)"
    fi

    local envf=$ETC/jiancha.env
    if [[ -e $envf ]]; then
        act kept "$envf（已存在，未改动）" "$envf (exists, left as it is)"
        repair_group "$envf"
    else
        env_template >"$envf"
        own "$envf" 0640
        act created "$envf（数据库 DSN，0640 $who）" "$envf (database DSNs, 0640 $who)"
    fi

    local secrets=$ETC/secrets
    if [[ -d $secrets ]]; then
        act kept "$secrets" "$secrets"
        repair_group "$secrets"
    else
        install -d "$secrets"
        own "$secrets" "$secrets_mode"
        act created "$secrets（密钥文件，$secrets_mode $who）" "$secrets (secret files, $secrets_mode $who)"
    fi
}

# The mode ETC has, or gets: 0750 root:GROUP when a group shares it (or we are not root),
# 0755 for a dynamic user, who can be in no group.
etc_mode() {
    if [[ -d $ETC ]]; then
        stat -c %a "$ETC"
    elif ((!IS_ROOT || MANAGE_USER)) || getent group "$SVC_USER" >/dev/null; then
        echo 750
    else
        echo 755
    fi
}

render_unit() {
    local line mode etc_rel=
    [[ $ETC =~ ^/etc/([^/]+)$ ]] && etc_rel=${BASH_REMATCH[1]}
    echo "# Installed by deploy/install.sh (prefix $PREFIX, configuration $ETC): a reinstall"
    echo "# rewrites this file; put local changes in a drop-in (systemctl edit jiancha)."
    while IFS= read -r line || [[ -n $line ]]; do
        case $line in
        User=*) line=User=$SVC_USER ;;
        Group=*) line=Group=$SVC_USER ;;
        ConfigurationDirectory=*)
            if [[ -n $etc_rel ]]; then
                # systemd leaves an existing configuration directory alone but warns at
                # every start when its mode is not ConfigurationDirectoryMode= (0755)
                line=ConfigurationDirectory=$etc_rel
                mode=$(etc_mode)
                [[ $mode == 755 ]] || line+=$'\n'ConfigurationDirectoryMode=0$mode
            else
                line="# ConfigurationDirectory= left out: $ETC is not directly under /etc"
            fi
            ;;
        *)
            line=${line//\/opt\/jiancha/@PREFIX@}
            line=${line//\/etc\/jiancha/@ETC@}
            line=${line//@PREFIX@/"$PREFIX"}
            line=${line//@ETC@/"$ETC"}
            ;;
        esac
        printf '%s\n' "$line"
    done <"$UNIT_TEMPLATE"
}

ensure_unit() {
    local tmp
    [[ -d $UNIT_DIR ]] || install -d -m 0755 "$UNIT_DIR"
    tmp=$(mktemp "$UNIT_DIR/.$UNIT_NAME.XXXXXX")
    TMP_FILES+=("$tmp")
    render_unit >"$tmp"
    chmod 0644 "$tmp"
    UNIT_CHANGED=1
    if cmp -s "$tmp" "$UNIT_FILE"; then
        UNIT_CHANGED=0
        act kept "$UNIT_FILE（内容未变）" "$UNIT_FILE (unchanged)"
    elif [[ -e $UNIT_FILE ]]; then
        mv -f -- "$tmp" "$UNIT_FILE"
        act updated "$UNIT_FILE" "$UNIT_FILE"
    else
        mv -f -- "$tmp" "$UNIT_FILE"
        act created "$UNIT_FILE（ExecStart=$VENV/bin/jiancha run）" \
            "$UNIT_FILE (ExecStart=$VENV/bin/jiancha run)"
    fi
}

systemd_step() {
    if ((!USE_SYSTEMCTL)); then
        act skipped "systemctl（--no-systemctl）" "systemctl (--no-systemctl)"
        return
    fi
    if ((!SYSTEMCTL)); then
        act skipped "systemctl daemon-reload：systemd 未在运行（PID 1 不是 systemd）" \
            "systemctl daemon-reload: systemd is not running (PID 1 is not systemd)"
        return
    fi
    if ((UNIT_CHANGED)); then
        systemctl daemon-reload
        act updated "systemctl daemon-reload" "systemctl daemon-reload"
    fi
    if ((ENABLE)); then
        systemctl enable --now "$UNIT_NAME"
        act updated "systemctl enable --now $UNIT_NAME" "systemctl enable --now $UNIT_NAME"
    elif systemctl_quiet is-active "$UNIT_NAME"; then
        say "服务正在运行，仍是旧版本：请执行 jiancha db migrate，然后 systemctl restart jiancha" \
            "the service is running the old version: run jiancha db migrate, then systemctl restart jiancha"
    fi
    # the console renders the installed templates with the code it started with
    if systemctl_quiet is-active jiancha-web; then
        say "控制台（jiancha-web）正在运行，仍是旧版本：请执行 systemctl restart jiancha-web" \
            "the console (jiancha-web) is running the old version: run systemctl restart jiancha-web"
    fi
}

do_install() {
    check_source
    say "== 安装 jiancha：$PREFIX、$ETC、$UNIT_FILE" "== installing jiancha: $PREFIX, $ETC, $UNIT_FILE"
    ensure_user
    ensure_venv
    write_state
    ensure_config
    ensure_unit
    systemd_step
    if [[ $UI == en ]]; then
        cat <<EOF
== done. Next:
  1. set JIANCHA_SOURCE_DSN (and JIANCHA_DSN) in $ETC/jiancha.env;
     edit $ETC/jiancha.toml (secrets go into $ETC/secrets/)
  2. create or upgrade schema jiancha:
     (set -a; . $ETC/jiancha.env; $VENV/bin/jiancha db migrate)
  3. systemctl enable --now jiancha   (after an upgrade: systemctl restart jiancha)
EOF
    else
        cat <<EOF
== 完成。下一步：
  1. 在 $ETC/jiancha.env 中填写 JIANCHA_SOURCE_DSN（及 JIANCHA_DSN）；
     按需编辑 $ETC/jiancha.toml（密钥放在 $ETC/secrets/）
  2. 建立或升级 jiancha 模式：
     (set -a; . $ETC/jiancha.env; $VENV/bin/jiancha db migrate)
  3. systemctl enable --now jiancha（升级后：systemctl restart jiancha）
EOF
    fi
}

# --- uninstall --------------------------------------------------------------------------

do_uninstall() {
    say "== 卸载 jiancha：$PREFIX、$UNIT_FILE" "== uninstalling jiancha: $PREFIX, $UNIT_FILE"
    local created_user=no
    if [[ -f $STATE_FILE ]] && grep -qx "created_user=$SVC_USER" "$STATE_FILE"; then
        created_user=yes
    fi

    if ((SYSTEMCTL)) && [[ -e $UNIT_FILE ]]; then
        systemctl_quiet disable --now "$UNIT_NAME" || true
        act removed "systemctl disable --now $UNIT_NAME" "systemctl disable --now $UNIT_NAME"
        local what=cache,runtime
        ((PURGE == 0)) || what=cache,runtime,state,logs
        systemctl_quiet clean --what="$what" "$UNIT_NAME" || true
    fi

    if [[ -e $UNIT_FILE ]]; then
        rm -f -- "$UNIT_FILE"
        act removed "$UNIT_FILE" "$UNIT_FILE"
    fi
    if [[ -d $UNIT_FILE.d ]]; then
        if ((PURGE)); then
            rm -rf -- "$UNIT_FILE.d"
            act removed "$UNIT_FILE.d" "$UNIT_FILE.d"
        else
            act kept "$UNIT_FILE.d（本地 drop-in；--purge 才删除）" \
                "$UNIT_FILE.d (local drop-ins; --purge removes them)"
        fi
    fi
    if ((SYSTEMCTL)); then
        systemctl daemon-reload
    elif ((USE_SYSTEMCTL)); then
        act skipped "systemctl daemon-reload：systemd 未在运行" \
            "systemctl daemon-reload: systemd is not running"
    fi

    if [[ -e $VENV ]]; then
        [[ -f $VENV/pyvenv.cfg ]] ||
            die "$VENV 不像虚拟环境（没有 pyvenv.cfg），不删除" \
                "$VENV does not look like a venv (no pyvenv.cfg); not removing it"
        rm -rf -- "$VENV"
        act removed "$VENV" "$VENV"
    fi
    rm -f -- "$PREFIX/README.md" "$STATE_FILE"
    if [[ -d $PREFIX ]]; then
        if rmdir -- "$PREFIX" 2>/dev/null; then
            act removed "$PREFIX" "$PREFIX"
        else
            act kept "$PREFIX（含有其他文件）" "$PREFIX (holds other files)"
        fi
    fi

    if ((MANAGE_USER && IS_ROOT)) && getent passwd "$SVC_USER" >/dev/null; then
        if [[ $created_user == yes ]]; then
            userdel "$SVC_USER"
            if getent group "$SVC_USER" >/dev/null; then groupdel "$SVC_USER" 2>/dev/null || true; fi
            act removed "用户 $SVC_USER" "user $SVC_USER"
        else
            act kept "用户 $SVC_USER（不是本脚本建立的）" "user $SVC_USER (not created by this script)"
        fi
    fi

    if [[ -d $ETC ]]; then
        if ((PURGE)); then
            [[ -e $ETC/jiancha.toml || -e $ETC/jiancha.env ]] ||
                die "$ETC 中既无 jiancha.toml 也无 jiancha.env，不像 jiancha 的配置目录，不删除" \
                    "$ETC holds neither jiancha.toml nor jiancha.env: not jiancha's; not removing it"
            rm -rf -- "$ETC"
            act removed "$ETC" "$ETC"
        else
            act kept "$ETC（运维数据；--purge 才删除）" "$ETC (operator data; --purge removes it)"
        fi
    fi
    say "== 完成" "== done"
}

case $ACTION in
install) do_install ;;
uninstall) do_uninstall ;;
print-unit)
    [[ -f $UNIT_TEMPLATE ]] || die "找不到 $UNIT_TEMPLATE" "$UNIT_TEMPLATE missing"
    render_unit
    ;;
esac
