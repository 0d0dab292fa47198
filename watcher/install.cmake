# install.cmake: what `cmake --install build [--prefix P]` puts where
# (GNUInstallDirs). Beside the library it installs: included from
# watcher/CMakeLists.txt once the targets exist.
#
#   BINDIR/tidemark
#   LIBDIR/libtidemark.so.0.x.y, libtidemark.so.0 (soname), libtidemark.so
#   LIBDIR/libtidemark.a
#   INCLUDEDIR/tidemark.h, INCLUDEDIR/tidemark/processor.h, .../version.h
#   LIBDIR/pkgconfig/tidemark.pc      prefix= the prefix installed INTO
#   LIBDIR/tidemark/                  the plugins (TDM_PLUGIN_INSTALL_DIR)
#   (the systemd unit and the man pages: watcher/cli/)
include(GNUInstallDirs)

# Where plugin targets install themselves:
#   install(TARGETS x LIBRARY DESTINATION ${TDM_PLUGIN_INSTALL_DIR})
set(TDM_PLUGIN_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/tidemark
    CACHE INTERNAL "plugins, relative to the prefix")

install(TARGETS tidemark RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS tidemark_shared
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_SKIP)
install(TARGETS tidemark_shared
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_ONLY)
install(TARGETS tidemark_static ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/watcher/include/tidemark.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/watcher/include/tidemark/processor.h
              ${PROJECT_BINARY_DIR}/include/tidemark/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tidemark)
install(DIRECTORY DESTINATION ${TDM_PLUGIN_INSTALL_DIR})

# tidemark.pc. The prefix is only known at install time (`--prefix P`
# overrides the configured one), so the file is generated twice: at configure
# time with everything but the prefix, and by the install script with
# CMAKE_INSTALL_PREFIX as it is then. Requires.private / Libs.private list
# what libtidemark.a needs (`pkg-config --static`): TDM_PC_REQUIRES_PRIVATE
# holds the pkg-config modules the library links (append to it, before this
# file is included, when the library gains one).
list(APPEND TDM_PC_REQUIRES_PRIVATE libuv lmdb libxxhash libsystemd zlib libzstd)
list(REMOVE_DUPLICATES TDM_PC_REQUIRES_PRIVATE)
string(REPLACE ";" " " TDM_PC_REQUIRES_PRIVATE "${TDM_PC_REQUIRES_PRIVATE}")
set(TDM_PC_LIBS_PRIVATE "-pthread")
foreach(l ${CMAKE_DL_LIBS})
  string(APPEND TDM_PC_LIBS_PRIVATE " -l${l}")
endforeach()
foreach(d LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${d}}")
    set(TDM_PC_${d} "${CMAKE_INSTALL_${d}}")
  else()
    set(TDM_PC_${d} "\${prefix}/${CMAKE_INSTALL_${d}}")
  endif()
endforeach()
set(TDM_PC_PREFIX "@TDM_PC_PREFIX@") # kept for the install-time pass
configure_file(${PROJECT_SOURCE_DIR}/watcher/tidemark.pc.in
  ${CMAKE_CURRENT_BINARY_DIR}/tidemark.pc.tmpl @ONLY)
set(TDM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}") # the build tree's copy
configure_file(${PROJECT_SOURCE_DIR}/watcher/tidemark.pc.in
  ${CMAKE_CURRENT_BINARY_DIR}/tidemark.pc @ONLY)
install(CODE "
  set(TDM_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${CMAKE_CURRENT_BINARY_DIR}/tidemark.pc.tmpl\"
                 \"${CMAKE_CURRENT_BINARY_DIR}/install/tidemark.pc\" @ONLY)")
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/install/tidemark.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
include(${PROJECT_SOURCE_DIR}/watcher/cli/dist.cmake)
