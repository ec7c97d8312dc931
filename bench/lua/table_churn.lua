-- Table churn: tables that grow, shrink and die. Arrays grown by append
-- (their array part reallocated as it doubles) and emptied from the end,
-- hash tables with integer and string keys filled and half deleted, and
-- small records made and dropped, over a working set that turns over.
--   luahost table_churn.lua [N]     (default 20000)
-- Sizes and sums are checked against what was inserted; prints a checksum.

local n = tonumber(arg and arg[1]) or 20000

local function check_accounting(phase)
  local summary = host and host.check()
  if summary then io.stderr:write("accounting ", phase, ": ", summary, "\n") end
end

local function expect(got, want, what)
  if got ~= want then error(string.format("%s: got %s, expected %s", what, got, want)) end
end

-- A fixed linear congruential generator: the same sequence everywhere.
local seed = 12345
local function rand(m)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % m
end

local checksum = 0
local slots = {}            -- the working set: 64 slots of live tables
local rounds = 8
for round = 1, rounds do
  -- 1. arrays of random lengths, grown by append and shrunk by removal
  local appended, removed = 0, 0
  for i = 1, n // 8 do
    local len = rand(200) + 1
    local a = {}
    for k = 1, len do a[#a + 1] = k end
    appended = appended + len
    local drop = len // 2
    for _ = 1, drop do table.remove(a) end
    removed = removed + drop
    expect(#a, len - drop, "array length")
    slots[rand(64) + 1] = a
  end
  expect(appended - removed > 0, true, "arrays")

  -- 2. hash tables: integer and string keys, then every other key deleted
  local keysum = 0
  for i = 1, n // 64 do
    local h = {}
    local m = rand(100) + 20
    for k = 1, m do
      h[k * 7919] = k
      h["k" .. k] = k
    end
    for k = 1, m, 2 do
      h[k * 7919] = nil
      h["k" .. k] = nil
    end
    local count, sum = 0, 0
    for _, v in pairs(h) do
      count = count + 1
      sum = sum + v
    end
    expect(count, 2 * (m // 2), "hash entries")
    expect(sum, 2 * (m // 2) * (m // 2 + 1), "hash sum")
    keysum = keysum + sum
    slots[rand(64) + 1] = h
  end

  -- 3. small records made and mostly dropped
  local acc = 0
  local last
  for i = 1, n do
    local r = { x = i, y = i * 2, z = { i, i + 1 } }
    acc = acc + r.x + r.y + r.z[2]
    if i % 16 == 0 then last = r end
  end
  expect(acc, n * (n + 1) // 2 * 4 + n, "records")
  slots[rand(64) + 1] = last

  checksum = (checksum + appended - removed + keysum + acc) % 1000000007
  check_accounting("round " .. round)
end
local live = 0
for _, t in pairs(slots) do live = live + 1 end
print(string.format("table_churn %d live %d checksum %d", n, live, checksum))
slots = nil
collectgarbage()
check_accounting("end")
