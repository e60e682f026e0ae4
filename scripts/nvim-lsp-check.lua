-- Driven by scripts/nvim-lsp-check: the Neovim 0.7 API (start_client), which later versions keep.
local file = os.getenv("FILE")
local failed = false
local function say(line) io.stdout:write(line .. "\n") end
local function check(ok, what) if not ok then failed = true; say("MISSING: " .. what) end end

local published = {}
local default = vim.lsp.handlers["textDocument/publishDiagnostics"]
vim.lsp.handlers["textDocument/publishDiagnostics"] = function(err, result, ctx, config)
  published[#published + 1] = result
  return default(err, result, ctx, config)
end

vim.cmd("edit " .. file)
local buf = vim.api.nvim_get_current_buf()
local id = vim.lsp.start_client({
  name = "fleetform",
  cmd = { os.getenv("FLEETFORM"), "lsp" },
  root_dir = vim.fn.fnamemodify(file, ":h"),
})
vim.lsp.buf_attach_client(buf, id)
check(vim.wait(30000, function() return #published > 0 end), "publishDiagnostics")
local files, total = 0, 0
for _, p in ipairs(published) do files = files + 1; total = total + #p.diagnostics end
say(string.format("publishDiagnostics: %d diagnostics in the first %d notifications (firefox-ci is valid)", total, files))

local client = vim.lsp.get_client_by_id(id)
say("positionEncoding: " .. tostring(client.server_capabilities.positionEncoding))
local doc = { uri = vim.uri_from_bufnr(buf) }
local symbols = client.request_sync("textDocument/documentSymbol", { textDocument = doc }, 10000, buf)
check(symbols and symbols.result and #symbols.result > 0, "documentSymbol")
if symbols and symbols.result then say("documentSymbol: " .. #symbols.result .. " top-level blocks") end

-- Hover on the first AMI set's label.
local line = vim.fn.search('^ami_set "') - 1
local text = vim.api.nvim_buf_get_lines(buf, line, line + 1, false)[1]
local hover = client.request_sync("textDocument/hover",
  { textDocument = doc, position = { line = line, character = text:find('"') } }, 10000, buf)
check(hover and hover.result, "hover")
if hover and hover.result then say("hover:\n" .. hover.result.contents.value) end

local fmt = client.request_sync("textDocument/formatting",
  { textDocument = doc, options = { tabSize = 2, insertSpaces = true } }, 10000, buf)
check(fmt and fmt.result, "formatting")
if fmt and fmt.result then say("formatting: " .. #fmt.result .. " edits (the example is formatted)") end

-- Type a mistake: a diagnostic comes back for this buffer.
local before = #published
vim.api.nvim_buf_set_lines(buf, line + 1, line + 1, false, { '  virtualisation = "hvm"' })
check(vim.wait(30000, function()
  for i = before + 1, #published do
    if #published[i].diagnostics > 0 then return true end
  end
  return false
end), "diagnostic after the change")
for i = before + 1, #published do
  for _, d in ipairs(published[i].diagnostics) do
    say(string.format("after the change: %s at line %d: %s", d.code, d.range.start.line + 1, d.message:match("[^\n]*")))
  end
end
vim.lsp.stop_client(id)
vim.cmd(failed and "cquit 1" or "qall!")
