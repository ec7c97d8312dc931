-- Binary trees: build and walk many short-lived complete binary trees while
-- one long-lived tree stays alive (the allocation pattern of the classic
-- benchmark). Every node is a 2-slot table.
--   luahost binary_trees.lua [MAXDEPTH]     (default 12)
-- Prints one line per depth and a checksum; each count is checked against
-- the node count of a complete tree, 2^(d+1) - 1.

local maxdepth = tonumber(arg and arg[1]) or 12
local mindepth = 4
if maxdepth < mindepth + 2 then maxdepth = mindepth + 2 end

local function check_accounting(phase)
  local summary = host and host.check()
  if summary then io.stderr:write("accounting ", phase, ": ", summary, "\n") end
end

local function build(depth)
  if depth == 0 then return { false, false } end
  depth = depth - 1
  return { build(depth), build(depth) }
end

local function count(tree)
  if not tree[1] then return 1 end
  return 1 + count(tree[1]) + count(tree[2])
end

local function nodes(depth) return 2 ^ (depth + 1) - 1 end

local checksum = 0
local function expect(got, want, what)
  if got ~= want then
    error(string.format("%s: got %d, expected %d", what, got, want))
  end
  checksum = checksum + got
end

local stretch = maxdepth + 1
local c = count(build(stretch))
expect(c, nodes(stretch), "stretch tree")
print(string.format("stretch tree of depth %d\t check: %d", stretch, c))
check_accounting("stretch")

local longlived = build(maxdepth)
for depth = mindepth, maxdepth, 2 do
  local iterations = 2 ^ (maxdepth - depth + mindepth)
  local total = 0
  for _ = 1, iterations do
    total = total + count(build(depth))
  end
  expect(total, iterations * nodes(depth), "depth " .. depth)
  print(string.format("%d\t trees of depth %d\t check: %d", iterations, depth, total))
  check_accounting("depth " .. depth)
end
c = count(longlived)
expect(c, nodes(maxdepth), "long lived tree")
print(string.format("long lived tree of depth %d\t check: %d", maxdepth, c))
print(string.format("binary_trees %d checksum %d", maxdepth, checksum))
longlived = nil
collectgarbage()
check_accounting("end")
