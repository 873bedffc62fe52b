# Sourced by the project's scripts: puts a Node.js >= 22 first on PATH.
# @pulumi/pulumi needs Node 22+; where the machine's node is older, Node 22
# comes from the npm registry's binary package (node@22) into .tools/.
NODE_VERSION_WANTED=22.23.3
_project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ "$(_node_major)" -lt 22 ]; then
  _node_bin="$_project_root/.tools/node/node_modules/node/bin"
  if [ ! -x "$_node_bin/node" ]; then
    echo "node-env: installing Node.js $NODE_VERSION_WANTED from the npm registry into .tools/node" >&2
    npm install --silent --no-save --no-package-lock --prefix "$_project_root/.tools/node" "node@$NODE_VERSION_WANTED" >&2
  fi
  export PATH="$_node_bin:$PATH"
fi
unset -f _node_major
