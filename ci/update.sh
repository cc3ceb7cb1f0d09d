#!/usr/bin/env bash
# The body of the scheduled `forge-update` job (ci/update.gitlab-ci.yml):
# run `forge update` (with --prebuild when FORGE_REGISTRY is set), push every
# update/* branch it made, and check that nothing else in the checkout moved.
# Credentials in FORGE_PUSH_URL are never printed.
set -euo pipefail

forge=${FORGE_BIN:-forge}
remote=${FORGE_PUSH_URL:?set FORGE_PUSH_URL to a git URL the job may push to}
redact() { sed -E 's#(://)[^/@]*@#\1***@#g'; }

before=$(git for-each-ref --format='%(refname:short)' 'refs/heads/update/*' | sort)
head=$(git rev-parse HEAD)

args=(--json update)
if [ -n "${FORGE_REGISTRY:-}" ]; then
  args+=(--prebuild --registry "$FORGE_REGISTRY")
  if [ "${FORGE_REGISTRY_INSECURE:-}" = 1 ]; then args+=(--insecure); fi
fi
# shellcheck disable=SC2086 # FORGE_UPDATE_ARGS holds extra flags and names
status=0
"$forge" "${args[@]}" ${FORGE_UPDATE_ARGS:-} >update.jsonl || status=$?

after=$(git for-each-ref --format='%(refname:short)' 'refs/heads/update/*' | sort)
new=$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed '/^$/d')
for branch in $new; do
  echo "pushing $branch"
  git push ${FORGE_PUSH_OPTIONS:-} "$remote" "refs/heads/$branch:refs/heads/$branch" 2>&1 | redact
done

# forge update commits on its own branches only: HEAD, the index and the
# work tree (manifests included) are exactly as checked out.
if [ "$(git rev-parse HEAD)" != "$head" ] || ! git diff --quiet HEAD --; then
  echo "error: the checkout changed during forge update" >&2
  exit 1
fi
echo "$(printf '%s\n' "$new" | sed '/^$/d' | wc -l) update branch(es) pushed"
exit "$status"
