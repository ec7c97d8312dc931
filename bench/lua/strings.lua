-- String building: the ways Lua programs make strings, many of them
-- short-lived, with Lua's string buffers growing by realloc.
--   luahost strings.lua [N]     (default 20000)
-- Each round of N lines formats them, joins them with table.concat,
-- rewrites the text with gsub, builds a long string by repeated `..`, and
-- keeps a few results alive. Lengths and counts are checked against
-- values computed by arithmetic; prints a checksum of what it built.

local n = tonumber(arg and arg[1]) or 20000

local function check_accounting(phase)
  local summary = host and host.check()
  if summary then io.stderr:write("accounting ", phase, ": ", summary, "\n") end
end

local function expect(got, want, what)
  if got ~= want then error(string.format("%s: got %s, expected %s", what, got, want)) end
end

local words = { "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta" }

-- Number of decimal digits of 1..m, summed.
local function digits_upto(m)
  local total, lo, d = 0, 1, 1
  while lo <= m do
    local hi = math.min(m, lo * 10 - 1)
    total = total + (hi - lo + 1) * d
    lo, d = lo * 10, d + 1
  end
  return total
end

local checksum = 0
local kept = {}
local rounds = 4
for round = 1, rounds do
  -- 1. format N lines ("<i>:<word>;<round>\n") and join them
  local lines = {}
  local wordlen = 0
  for i = 1, n do
    local w = words[i % #words + 1]
    wordlen = wordlen + #w
    lines[i] = string.format("%d:%s;%d\n", i, w, round)
  end
  local text = table.concat(lines)
  expect(#text, digits_upto(n) + wordlen + n * (3 + #tostring(round)), "joined length")

  -- 2. rewrite: every word upper-cased in brackets
  local rewritten, count = text:gsub("%a+", function(w) return "[" .. w:upper() .. "]" end)
  expect(count, n, "gsub count")
  expect(#rewritten, #text + 2 * n, "rewritten length")

  -- 3. strings grown with `..` (each step a new string, up to 800 bytes)
  local pieces = {}
  for p = 1, n // 200 do
    local s = ""
    for i = 1, 200 do
      s = s .. words[(i + p) % #words + 1]:sub(1, 3) .. ","
    end
    pieces[p] = s
    expect(#s, 800, "grown string")
  end

  -- 4. split the text back into fields, count them, keep every 97th line
  local fields = 0
  for num, w in text:gmatch("(%d+):(%a+);") do
    fields = fields + 1
    if tonumber(num) % 97 == 0 then kept[#kept + 1] = w .. "#" .. num end
  end
  expect(fields, n, "fields")

  -- 5. string.rep and reverse of growing sizes
  local repl = 0
  for k = 1, n // 8 do
    local r = string.rep("ab", k % 300 + 1, "-"):reverse()
    repl = repl + #r
  end

  checksum = (checksum + #text + #rewritten + #table.concat(pieces) + repl) % 1000000007
  check_accounting("round " .. round)
end
expect(#kept, rounds * (n // 97), "kept lines")
print(string.format("strings %d kept %d checksum %d", n, #kept, checksum))
kept = nil
collectgarbage()
check_accounting("end")
