# dist.cmake: what ships beside the command (included by watcher/install.cmake):
#   the man pages tidemark(1) and tidemark.conf(5), from scdoc sources, built
#   when scdoc is found and installed under MANDIR;
#   the systemd unit tidemark@.service, with the install prefix's BINDIR
#   substituted, installed under TDM_SYSTEMD_UNIT_DIR (default
#   PREFIX/lib/systemd/system).
set(TDM_CLI_DIR ${PROJECT_SOURCE_DIR}/watcher/cli)

find_program(SCDOC scdoc)
if(SCDOC)
  set(TDM_MAN_PAGES tidemark.1 tidemark.conf.5)
  set(TDM_MAN_OUTPUTS)
  foreach(page ${TDM_MAN_PAGES})
    string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section "${page}")
    set(out ${CMAKE_BINARY_DIR}/man/${page})
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
      COMMAND ${SCDOC} < ${TDM_CLI_DIR}/${page}.scd > ${out}
      DEPENDS ${TDM_CLI_DIR}/${page}.scd
      COMMENT "scdoc ${page}"
      VERBATIM)
    list(APPEND TDM_MAN_OUTPUTS ${out})
    install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
  endforeach()
  add_custom_target(man ALL DEPENDS ${TDM_MAN_OUTPUTS})
else()
  message(WARNING "scdoc not found (Debian: apt-get install scdoc): the man "
                  "pages tidemark(1) and tidemark.conf(5) are not built")
endif()

# The unit runs BINDIR/tidemark of the prefix installed into, which is known
# only at install time (`cmake --install --prefix P`): generated then.
set(TDM_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "where tidemark@.service is installed (relative: under the prefix)")
if(IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
  set(tdm_unit_bindir "${CMAKE_INSTALL_BINDIR}")
else()
  set(tdm_unit_bindir "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}")
endif()
install(CODE "
  set(TDM_UNIT_BINDIR \"${tdm_unit_bindir}\")
  configure_file(\"${TDM_CLI_DIR}/tidemark@.service.in\"
                 \"${CMAKE_BINARY_DIR}/install/tidemark@.service\" @ONLY)")
install(FILES ${CMAKE_BINARY_DIR}/install/tidemark@.service
  DESTINATION ${TDM_SYSTEMD_UNIT_DIR})
# The build tree's copy (for `systemd-analyze security` in the tests).
set(TDM_UNIT_BINDIR "${CMAKE_INSTALL_FULL_BINDIR}")
configure_file(${TDM_CLI_DIR}/tidemark@.service.in
  ${CMAKE_BINARY_DIR}/tidemark@.service @ONLY)
