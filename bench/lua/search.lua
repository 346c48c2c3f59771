-- One-word searches over the generator's vocabulary.
local words = { "garden", "river", "lantern", "compass", "journal", "archive", "harbor", "forest", "merge", "socket" }
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/search?q=" .. words[(i % #words) + 1])
end
