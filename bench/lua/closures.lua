-- Closures: functions made at run time with their upvalues, composed,
-- called and dropped; coroutines (each with its own stack, grown by
-- realloc) used as generators; varargs packed into tables.
--   luahost closures.lua [N]     (default 20000)
-- Every sum is checked against its closed form; prints a checksum.

local n = tonumber(arg and arg[1]) or 20000

local function check_accounting(phase)
  local summary = host and host.check()
  if summary then io.stderr:write("accounting ", phase, ": ", summary, "\n") end
end

local function expect(got, want, what)
  if got ~= want then error(string.format("%s: got %s, expected %s", what, got, want)) end
end

local function counter(start)
  local c = start
  return function() c = c + 1; return c end
end

local function adder(k) return function(x) return x + k end end

local function compose(f, g) return function(...) return f(g(...)) end end

local function generator(m)
  return coroutine.wrap(function()
    for i = 1, m do coroutine.yield(i) end
  end)
end

local function pack_sum(...)
  local t = table.pack(...)
  local s = 0
  for i = 1, t.n do s = s + t[i] end
  return s
end

-- Deep recursion through closures: the Lua stack grows and shrinks.
local function deep(d)
  local f
  f = function(k) if k == 0 then return 0 end return 1 + f(k - 1) end
  return f(d)
end

local checksum = 0
local keep = {}
local rounds = 4
for round = 1, rounds do
  -- 1. counters: each closure with its own upvalue, called a few times
  local total = 0
  for i = 1, n do
    local c = counter(i)
    c(); c()
    total = total + c()          -- i + 3
  end
  expect(total, n * (n + 1) // 2 + 3 * n, "counters")

  -- 2. chains of composed adders: f(x) = x + 1 + 2 + ... + 8
  local composed = 0
  for i = 1, n // 4 do
    local f = adder(1)
    for k = 2, 8 do f = compose(adder(k), f) end
    composed = composed + f(i)
    if i % 256 == 0 then keep[#keep + 1] = f end
  end
  local m = n // 4
  expect(composed, m * (m + 1) // 2 + 36 * m, "composed adders")

  -- 3. generators: coroutines yielding 1..len
  local gensum, gens = 0, n // 40
  for i = 1, gens do
    local len = i % 50 + 1
    for v in generator(len) do gensum = gensum + v end
  end
  local want = 0
  for i = 1, gens do local len = i % 50 + 1; want = want + len * (len + 1) // 2 end
  expect(gensum, want, "generators")

  -- 4. varargs packed into tables
  local packed = 0
  for i = 1, n // 4 do packed = packed + pack_sum(i, i, i, i, i, i) end
  expect(packed, 6 * (m * (m + 1) // 2), "varargs")

  -- 5. recursion deep enough to grow the stack, in coroutines too
  local depth = 0
  for i = 1, 8 do
    depth = depth + deep(n // 20 * i)
    depth = depth + coroutine.wrap(deep)(n // 40 * i)
  end
  expect(depth, (n // 20 + n // 40) * 36, "recursion")

  checksum = (checksum + total + composed + gensum + packed + depth) % 1000000007
  check_accounting("round " .. round)
end
local alive = 0
for _, f in ipairs(keep) do alive = alive + f(0) end
expect(alive, 36 * #keep, "kept closures")
print(string.format("closures %d kept %d checksum %d", n, #keep, checksum))
keep = nil
collectgarbage()
check_accounting("end")
