# PX_SANITIZE="address;undefined" or "thread": applied to everything in this build tree.
if(PX_SANITIZE)
  string(REPLACE ";" "," _px_san "${PX_SANITIZE}")
  add_compile_options(-fsanitize=${_px_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_px_san})
  add_compile_definitions(PX_SANITIZED=1)
endif()
